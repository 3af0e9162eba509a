package entry

import (
	"bytes"
	"encoding/json"
	"fmt"

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
