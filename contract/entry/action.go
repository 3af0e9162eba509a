package entry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/zt-infra/ztlog/internal/jcs"
)

// Action names one requested action: who asks to do what, on what, with
// which arguments, through which broker. Its digest (ActionDigest) is how
// decisions, receipts, attestations and broker results refer to it.
type Action struct {
	// Actor is the authenticated SPIFFE ID of the agent.
	Actor string
	// Action is the action name, e.g. "aws.ec2.terminate_instances".
	Action string
	// Resource is what the action acts on.
	Resource string
	// ArgsDigest is the digest of the arguments ("sha256:<hex>"), or "".
	ArgsDigest string
	// Broker is the SPIFFE ID of the execution broker, or "".
	Broker string
	// CapabilitiesDigest is the digest of the capability manifest the work
	// runs under (contract/capability), or "" when the request has none.
	CapabilitiesDigest string
}

// ActionDigest returns the action digest of a: "sha256:" and the lowercase
// hex SHA-256 of the RFC 8785 (JCS) serialization of the object
//
//	{"action":A,"actor":X,"args_digest":D,"broker":B,"resource":R,"v":1}
//
// in which all six members are always present; an absent args digest or
// broker is the empty string. When the action names a capability manifest,
// a seventh member "capabilities_digest" holds its digest (it is absent,
// never "", otherwise). See entry.md, "Action digest".
func ActionDigest(a Action) (string, error) {
	if err := ValidSPIFFEID(a.Actor); err != nil {
		return "", fieldErr("actor", "%v", err)
	}
	if err := checkText("action", a.Action, maxName); err != nil {
		return "", err
	}
	if err := checkText("resource", a.Resource, maxText); err != nil {
		return "", err
	}
	if err := checkDigest("args_digest", a.ArgsDigest, false); err != nil {
		return "", err
	}
	if err := checkSPIFFEID("broker", a.Broker, false); err != nil {
		return "", err
	}
	if err := checkDigest("capabilities_digest", a.CapabilitiesDigest, false); err != nil {
		return "", err
	}
	if b, ok := appendActionObject(make([]byte, 0, 128+len(a.Action)+len(a.Resource)+len(a.Actor)+len(a.Broker)), a); ok {
		return Digest(b), nil
	}
	m := map[string]any{
		"v":           1,
		"actor":       a.Actor,
		"action":      a.Action,
		"resource":    a.Resource,
		"args_digest": a.ArgsDigest,
		"broker":      a.Broker,
	}
	if a.CapabilitiesDigest != "" {
		m["capabilities_digest"] = a.CapabilitiesDigest
	}
	b, err := canonical(m)
	if err != nil {
		return "", fmt.Errorf("%w: action digest: %w", ErrMalformed, err)
	}
	return Digest(b), nil
}

// appendActionObject appends the RFC 8785 serialization of a's action
// object (the members in JCS order: action, actor, args_digest, broker,
// capabilities_digest, resource, v), the bytes canonical writes for the
// same object, without building a map or encoding it twice. ok is false
// when a member is not valid UTF-8 (encoding/json then substitutes
// U+FFFD, and canonical is the definition).
func appendActionObject(dst []byte, a Action) (out []byte, ok bool) {
	for _, s := range [...]string{a.Action, a.Actor, a.ArgsDigest, a.Broker, a.CapabilitiesDigest, a.Resource} {
		if !utf8.ValidString(s) {
			return nil, false
		}
	}
	dst = append(dst, `{"action":`...)
	dst = jcs.AppendString(dst, []byte(a.Action))
	dst = append(dst, `,"actor":`...)
	dst = jcs.AppendString(dst, []byte(a.Actor))
	dst = append(dst, `,"args_digest":`...)
	dst = jcs.AppendString(dst, []byte(a.ArgsDigest))
	dst = append(dst, `,"broker":`...)
	dst = jcs.AppendString(dst, []byte(a.Broker))
	if a.CapabilitiesDigest != "" {
		dst = append(dst, `,"capabilities_digest":`...)
		dst = jcs.AppendString(dst, []byte(a.CapabilitiesDigest))
	}
	dst = append(dst, `,"resource":`...)
	dst = jcs.AppendString(dst, []byte(a.Resource))
	return append(dst, `,"v":1}`...), true
}

// canonical returns the RFC 8785 serialization of v.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return jcs.Canonicalize(buf.Bytes())
}
