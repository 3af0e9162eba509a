package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/jcs"
	ztext "github.com/zt-infra/ztlog/internal/text"
)

// Error codes of request decoding (httperr.Error.Code).
const (
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeTooLarge         = "body_too_large"
	CodeBadUTF8          = "bad_utf8"
	CodeMalformedJSON    = "malformed_json"
	CodeUnknownField     = "unknown_field"
	CodeDuplicateField   = "duplicate_field"
	CodeWrongType        = "wrong_type"
	CodeMissingField     = "missing_field"
	CodeInvalidField     = "invalid_field"
)

// The forms of fields, shared with openapi.json (the same patterns).
var (
	spiffeIDPattern = regexp.MustCompile(`^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$`)
	actionPattern   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$`)
	digestPattern   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	corrPattern     = regexp.MustCompile(`^[!-~]+$`)
	labelKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// Limits, in Unicode code points as JSON Schema counts them.
const (
	maxAction   = 256
	maxResource = 512 // ≤ 2,048 bytes, the entry's limit
	maxActor    = 512
	maxSPIFFEID = 2048
	maxCorrID   = 128
	maxOwner    = 512
	maxLabelKey = 63
	maxLabelVal = 512
	maxLabels   = 64
	maxBrokers  = 32
	maxPayload  = 48 << 10
	maxSigs     = 8
	maxTypeLen  = 256
	maxKeyID    = 256
)

// ReadBody reads a request body for decoding: Content-Type must be JSON,
// the body at most MaxBody bytes of valid UTF-8.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *httperr.Error, int) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &httperr.Error{Code: CodeUnsupportedMedia, Field: "Content-Type",
				Message: fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct)}, http.StatusUnsupportedMediaType
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &httperr.Error{Code: CodeTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes; send digests of large arguments, not their contents", MaxBody)}, http.StatusRequestEntityTooLarge
	}
	if err != nil {
		return nil, &httperr.Error{Code: CodeMalformedJSON, Message: "could not read the request body: " + err.Error()}, http.StatusBadRequest
	}
	if !utf8.Valid(body) {
		return nil, &httperr.Error{Code: CodeBadUTF8, Message: "request body is not valid UTF-8"}, http.StatusBadRequest
	}
	return body, nil, 0
}

// decode unmarshals body strictly into v: one object, exact member names,
// no unknown or duplicate members.
func decode(body []byte, v any) *httperr.Error {
	err := json.Unmarshal(body, v, json.RejectUnknownMembers(true), json.MatchCaseInsensitiveNames(false))
	if err == nil {
		return nil
	}
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &syn):
		field := fieldName(syn.JSONPointer)
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return &httperr.Error{Code: CodeDuplicateField, Field: field, Message: fmt.Sprintf("member %q appears more than once", field)}
		}
		return &httperr.Error{Code: CodeMalformedJSON, Field: field, Message: "not a valid JSON document: " + syn.Err.Error()}
	case errors.As(err, &se):
		field := fieldName(se.JSONPointer)
		if errors.Is(se.Err, json.ErrUnknownName) {
			return &httperr.Error{Code: CodeUnknownField, Field: field, Message: fmt.Sprintf("unknown member %q (member names are exact and case-sensitive; see /v1/openapi.json)", field)}
		}
		want := "a value of another type"
		if se.GoType != nil {
			want = jsonKind(se.GoType.Kind().String())
		}
		if field == "" {
			return &httperr.Error{Code: CodeWrongType, Message: fmt.Sprintf("the body must be a JSON object, got %s", se.JSONKind)}
		}
		return &httperr.Error{Code: CodeWrongType, Field: field, Message: fmt.Sprintf("%s must be %s, got %s", field, want, se.JSONKind)}
	}
	return &httperr.Error{Code: CodeMalformedJSON, Message: err.Error()}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "struct", "map", "ptr":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// fieldName turns a JSON Pointer into the dotted field form used in errors:
// /attestation/signatures/0/sig -> attestation.signatures[0].sig.
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func missing(field string) *httperr.Error {
	return &httperr.Error{Code: CodeMissingField, Field: field, Message: fmt.Sprintf("%s is required", field)}
}

func invalid(field, format string, args ...any) *httperr.Error {
	return &httperr.Error{Code: CodeInvalidField, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// text checks a free-text field: length in code points, no control chars.
func text(field, s string, max int, required bool) *httperr.Error {
	if s == "" {
		if required {
			return missing(field)
		}
		return nil
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "longer than %d characters", max)
	}
	if m := ztext.RefusedMessage(s); m != "" {
		return invalid(field, "%s", m)
	}
	return nil
}

func pattern(field, s string, re *regexp.Regexp, max int, required bool, what string) *httperr.Error {
	if s == "" {
		if required {
			return missing(field)
		}
		return nil
	}
	if utf8.RuneCountInString(s) > max {
		return invalid(field, "longer than %d characters", max)
	}
	if !re.MatchString(s) {
		return invalid(field, "%q is not %s", ztext.Cut(s, 80), what)
	}
	return nil
}

func spiffeID(field, s string, required bool) *httperr.Error {
	if e := pattern(field, s, spiffeIDPattern, maxSPIFFEID, required, "a SPIFFE ID (spiffe://trust-domain/path)"); e != nil {
		return e
	}
	if s != "" {
		if err := entry.ValidSPIFFEID(s); err != nil {
			return invalid(field, "%v", err)
		}
	}
	return nil
}

// presence tells whether top-level members of body appear (to tell a
// missing member from an empty string). body is parsed once, on the first
// question about a member whose decoded value is empty: a non-empty value
// is present.
type presence struct {
	body    []byte
	parsed  bool
	members map[string]jsontext.Value
}

func (p *presence) has(name, decoded string) bool {
	if decoded != "" {
		return true
	}
	if !p.parsed {
		p.parsed = true
		if json.Unmarshal(p.body, &p.members) != nil {
			p.members = nil
		}
	}
	_, ok := p.members[name]
	return ok
}

// DecodeActionRequest decodes and validates a POST /v1/actions body.
func DecodeActionRequest(body []byte) (*ActionRequest, *httperr.Error) {
	var req ActionRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	p := &presence{body: body}
	checks := []*httperr.Error{
		spiffeID("actor", req.Actor, p.has("actor", req.Actor)),
		pattern("action", req.Action, actionPattern, maxAction, true, "an action name (letters, digits and _ . : / -)"),
		text("resource", req.Resource, maxResource, true),
		pattern("args_digest", req.ArgsDigest, digestPattern, 71, p.has("args_digest", req.ArgsDigest), "a digest (sha256:<64 lowercase hex digits>)"),
		spiffeID("broker", req.Broker, p.has("broker", req.Broker)),
		pattern("correlation_id", req.CorrelationID, corrPattern, maxCorrID, p.has("correlation_id", req.CorrelationID), "printable ASCII without spaces"),
	}
	for _, e := range checks {
		if e != nil {
			return nil, e
		}
	}
	if a := req.Attestation; a != nil {
		if e := a.validate("attestation"); e != nil {
			return nil, e
		}
	}
	if e := chain("attestation_chain", req.AttestationChain, false); e != nil {
		return nil, e
	}
	if req.Attestation == nil && len(req.AttestationChain) > 0 {
		return nil, invalid("attestation_chain", "a signer chain without an attestation")
	}
	if req.Capabilities != nil {
		if t := strings.TrimLeft(string(req.Capabilities), " \t\r\n"); t == "" || t[0] != '{' {
			return nil, &httperr.Error{Code: CodeWrongType, Field: "capabilities", Message: "capabilities must be a capability manifest (an object)"}
		}
		m, err := capability.Parse(req.Capabilities)
		if err != nil {
			field := "capabilities"
			var ce *capability.Error
			if errors.As(err, &ce) && ce.Field != "manifest" {
				field += "." + ce.Field
			}
			return nil, &httperr.Error{Code: CodeInvalidField, Field: field, Message: err.Error()}
		}
		req.Manifest = m
		if req.CapabilitiesDigest, err = m.Digest(); err != nil {
			return nil, invalid("capabilities", "%v", err)
		}
	}
	if req.Args != nil {
		if t := strings.TrimLeft(string(req.Args), " \t\r\n"); t == "" || t[0] != '{' {
			return nil, &httperr.Error{Code: CodeWrongType, Field: "args", Message: "args must be an object of argument values"}
		}
		d, err := ArgsDigest(req.Args)
		if err != nil {
			return nil, invalid("args", "%v", err)
		}
		if req.ArgsDigest != "" && req.ArgsDigest != d {
			return nil, invalid("args_digest", "%s is not the digest of args (%s); send one, or the JCS digest of args", req.ArgsDigest, d)
		}
		req.ArgsDigest = d
	}
	return &req, nil
}

// ArgsDigest is the digest of argument values: "sha256:" and the hex
// SHA-256 of their RFC 8785 (JCS) serialization.
func ArgsDigest(args []byte) (string, error) {
	c, err := jcs.Canonicalize(args)
	if err != nil {
		return "", err
	}
	return entry.Digest(c), nil
}

func (env *Envelope) validate(field string) *httperr.Error {
	if e := text(field+".payloadType", env.PayloadType, maxTypeLen, true); e != nil {
		return e
	}
	if env.Payload == "" {
		return missing(field + ".payload")
	}
	if len(env.Payload) > maxPayload {
		return invalid(field+".payload", "longer than %d characters", maxPayload)
	}
	if _, err := base64.StdEncoding.DecodeString(env.Payload); err != nil {
		return invalid(field+".payload", "not standard base64")
	}
	if len(env.Signatures) == 0 {
		return missing(field + ".signatures")
	}
	if len(env.Signatures) > maxSigs {
		return invalid(field+".signatures", "more than %d signatures", maxSigs)
	}
	for i, s := range env.Signatures {
		p := fmt.Sprintf("%s.signatures[%d]", field, i)
		if e := text(p+".keyid", s.KeyID, maxKeyID, false); e != nil {
			return e
		}
		if s.Sig == "" {
			return missing(p + ".sig")
		}
		if len(s.Sig) > 4096 {
			return invalid(p+".sig", "longer than 4096 characters")
		}
		if _, err := base64.StdEncoding.DecodeString(s.Sig); err != nil {
			return invalid(p+".sig", "not standard base64")
		}
	}
	return nil
}

// DecodeLegacyActionRequest decodes and validates a POST /actions body.
func DecodeLegacyActionRequest(body []byte) (*LegacyActionRequest, *httperr.Error) {
	var req LegacyActionRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	for _, e := range []*httperr.Error{
		text("actor", req.Actor, maxActor, false),
		pattern("action", req.Action, actionPattern, maxAction, true, "an action name (letters, digits and _ . : / -)"),
		text("resource", req.Resource, maxResource, true),
	} {
		if e != nil {
			return nil, e
		}
	}
	return &req, nil
}

// DecodeAgentRequest decodes and validates a POST /v1/agents body.
func DecodeAgentRequest(body []byte) (*AgentRequest, *httperr.Error) {
	var req AgentRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	switch req.Op {
	case "":
		return nil, missing("op")
	case entry.AgentRegister, entry.AgentRevoke:
	default:
		return nil, invalid("op", "want register or revoke, got %q", ztext.Cut(req.Op, 40))
	}
	if e := spiffeID("id", req.ID, true); e != nil {
		return nil, e
	}
	if e := text("owner", req.Owner, maxOwner, false); e != nil {
		return nil, e
	}
	if len(req.Brokers) > maxBrokers {
		return nil, invalid("brokers", "more than %d brokers", maxBrokers)
	}
	for i, b := range req.Brokers {
		if e := spiffeID(fmt.Sprintf("brokers[%d]", i), b, true); e != nil {
			return nil, e
		}
	}
	if len(req.Labels) > maxLabels {
		return nil, invalid("labels", "more than %d labels", maxLabels)
	}
	for k, v := range req.Labels {
		if e := pattern("labels", k, labelKeyPattern, maxLabelKey, true, "a label key (letters, digits and . _ / -, at most 63)"); e != nil {
			return nil, e
		}
		if e := text("labels."+k, v, maxLabelVal, false); e != nil {
			return nil, e
		}
	}
	if len(req.Aliases) > entry.MaxAliases {
		return nil, invalid("aliases", "more than %d aliases", entry.MaxAliases)
	}
	for i, a := range req.Aliases {
		field := fmt.Sprintf("aliases[%d]", i)
		if err := entry.ValidAlias(a); err != nil {
			return nil, invalid(field, "%v (want an actor name such as hello-world-agent)", err)
		}
		for j, b := range req.Aliases[:i] {
			if a == b {
				return nil, invalid("aliases", "%q is listed twice (aliases[%d] and aliases[%d])", a, j, i)
			}
		}
	}
	if req.Op == entry.AgentRevoke && (req.Owner != "" || len(req.Brokers) > 0 || len(req.Labels) > 0 || len(req.Aliases) > 0) {
		return nil, invalid("op", "a revoke carries only the id")
	}
	return &req, nil
}

// Limits of POST /v1/results.
const (
	maxChain     = 4
	maxCertChars = 12 << 10 // base64 of 8 KiB of DER, with room
)

// DecodeResultRequest decodes and validates a POST /v1/results body.
func DecodeResultRequest(body []byte) (*ResultRequest, *httperr.Error) {
	var req ResultRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Statement == nil {
		return nil, missing("statement")
	}
	if e := req.Statement.validate("statement"); e != nil {
		return nil, e
	}
	if e := chain("chain", req.Chain, true); e != nil {
		return nil, e
	}
	return &req, nil
}

// chain checks an X.509-SVID chain: 1 to 4 standard base64 strings.
func chain(field string, c []string, required bool) *httperr.Error {
	if len(c) == 0 {
		if required {
			return missing(field)
		}
		return nil
	}
	if len(c) > maxChain {
		return invalid(field, "more than %d certificates", maxChain)
	}
	for i, s := range c {
		f := fmt.Sprintf("%s[%d]", field, i)
		if s == "" {
			return invalid(f, "empty certificate")
		}
		if len(s) > maxCertChars {
			return invalid(f, "longer than %d characters", maxCertChars)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(s); err != nil {
			return invalid(f, "not standard base64 DER")
		}
	}
	return nil
}

// DecodePossibleRequest decodes and validates a POST /v1/actions/possible
// body: 1 to MaxPossibleActions action names, each of the form of
// ActionRequest.Action.
func DecodePossibleRequest(body []byte) (*PossibleRequest, *httperr.Error) {
	var req PossibleRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Actions == nil {
		return nil, missing("actions")
	}
	if n := len(req.Actions); n == 0 || n > MaxPossibleActions {
		return nil, invalid("actions", "%d action names: send 1 to %d (ask again for more)", n, MaxPossibleActions)
	}
	for i, a := range req.Actions {
		if e := pattern(fmt.Sprintf("actions[%d]", i), a, actionPattern, maxAction, true, "an action name (letters, digits and _ . : / -)"); e != nil {
			return nil, e
		}
	}
	return &req, nil
}
