package entry

import (
	"encoding/json"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Effect is the outcome of a decision.
type Effect string

// The two effects. There is no third: anything that is not a verified allow
// is a deny.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Limits on free-text fields, in bytes.
const (
	maxName   = 256  // action names, engines, revisions, methods, codes
	maxText   = 2048 // resources, messages
	maxLabels = 64
)

// Decision records one authorization decision. It is committed before the
// caller sees the answer, for allow and deny alike.
type Decision struct {
	Header
	// Time the decision was made (entry time form).
	Time string `json:"time"`
	// CorrelationID as received in X-Correlation-ID or generated.
	CorrelationID string `json:"correlation_id"`
	// Actor is the authenticated SPIFFE ID of the caller.
	Actor string `json:"actor"`
	// ClaimedActor is the body's actor when it differed from Actor (the
	// request is then denied); empty otherwise.
	ClaimedActor string `json:"claimed_actor,omitempty"`
	// ActorAlias is the body's actor when it was one of the caller's
	// registered aliases (POST /actions): the claim was accepted, and Actor
	// is the SPIFFE ID it resolved to. Never set with ClaimedActor.
	ActorAlias string `json:"actor_alias,omitempty"`
	// Authn says how Actor was authenticated.
	Authn Authn `json:"authn"`
	// Action and Resource as requested.
	Action   string `json:"action"`
	Resource string `json:"resource"`
	// ArgsDigest is the digest of the action's arguments; argument values
	// are never logged.
	ArgsDigest string `json:"args_digest,omitempty"`
	// ActionDigest binds actor, action, resource, args digest and broker;
	// receipts and attestations name the action by it.
	ActionDigest string `json:"action_digest"`
	// Broker is the SPIFFE ID of the execution broker the work is for.
	Broker string `json:"broker,omitempty"`
	// CapabilitiesDigest is the digest of the capability manifest the work
	// is approved to run under (contract/capability); part of ActionDigest.
	CapabilitiesDigest string `json:"capabilities_digest,omitempty"`
	// User is the delegated user, when a user token was presented.
	User *User `json:"user,omitempty"`
	// Attestation is the agent's runtime attestation, when one was sent.
	Attestation *Attestation `json:"attestation,omitempty"`
	// Findings are guardrail findings over the inspected arguments.
	Findings []Finding `json:"findings,omitempty"`
	// Effect is the decision.
	Effect Effect `json:"decision"`
	// Reasons explain the effect; a deny always has at least one.
	Reasons []Reason `json:"reasons"`
	// Policy identifies the policy version that decided.
	Policy PolicyRef `json:"policy"`
	// Receipt identifies the receipt issued for an allow.
	Receipt *ReceiptRef `json:"receipt,omitempty"`
}

// Authn records how the caller proved its identity.
type Authn struct {
	// Method is "x509-svid" or "jwt-svid".
	Method string `json:"method"`
	// Serial is the X.509-SVID serial number (hex) or the JWT-SVID's jti when
	// it has one.
	Serial string `json:"serial,omitempty"`
	// Expires is the SVID's expiry.
	Expires string `json:"expires,omitempty"`
}

// User is a delegated user on whose behalf the agent acts.
type User struct {
	Issuer  string   `json:"issuer"`
	Subject string   `json:"subject"`
	Scopes  []string `json:"scopes,omitempty"`
}

// Attestation is a DSSE envelope committed with a decision or result. When
// the envelope is larger than the contract allows, Envelope is omitted and
// Digest plus Claims keep what policy used.
type Attestation struct {
	// Digest of the DSSE envelope's JSON bytes as received.
	Digest string `json:"digest"`
	// Envelope is the DSSE envelope itself, when it fits.
	Envelope json.RawMessage `json:"envelope,omitempty"`
	// Chain is the signer's X.509-SVID chain, leaf first, base64 DER.
	Chain []string `json:"chain,omitempty"`
	// Claims are the statement fields policy evaluated.
	Claims map[string]string `json:"claims,omitempty"`
}

// Finding is a guardrail detector hit: type and position, never the value.
type Finding struct {
	Type string `json:"type"`
	// Rule names the detector rule that matched (e.g. gitleaks:aws-access-token).
	Rule   string `json:"rule,omitempty"`
	Arg    string `json:"arg,omitempty"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

// Reason explains an effect: a stable code and a human message.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PolicyRef names a policy version.
type PolicyRef struct {
	Hash     string `json:"hash"`
	Engine   string `json:"engine"`
	Revision string `json:"revision,omitempty"`
}

// ReceiptRef names the receipt issued for an allow. The receipt itself (a
// JWS) binds the log index and leaf hash of this entry, so it is not inside it.
type ReceiptRef struct {
	ID       string `json:"id"`
	KeyID    string `json:"kid"`
	Audience string `json:"audience"`
	Expires  string `json:"expires"`
}

func (*Decision) EntryKind() Kind   { return KindDecision }
func (d *Decision) header() *Header { return &d.Header }

// normalize writes an empty reason list as [] rather than null.
func (d *Decision) normalize() {
	if d.Reasons == nil {
		d.Reasons = []Reason{}
	}
}

// Validate checks every field of the decision.
func (d *Decision) Validate() error {
	if err := checkTime("time", d.Time); err != nil {
		return err
	}
	if err := checkText("correlation_id", d.CorrelationID, maxName); err != nil {
		return err
	}
	if err := checkSPIFFEID("actor", d.Actor, true); err != nil {
		return err
	}
	if err := checkOptionalText("claimed_actor", d.ClaimedActor, maxText); err != nil {
		return err
	}
	if err := checkAlias("actor_alias", d.ActorAlias, false); err != nil {
		return err
	}
	if d.ActorAlias != "" && d.ClaimedActor != "" {
		return fieldErr("actor_alias", "set with claimed_actor: an accepted alias is not a differing actor")
	}
	switch d.Authn.Method {
	case "x509-svid", "jwt-svid":
	default:
		return fieldErr("authn.method", "want x509-svid or jwt-svid, got %q", d.Authn.Method)
	}
	if err := checkOptionalText("authn.serial", d.Authn.Serial, maxName); err != nil {
		return err
	}
	if d.Authn.Expires != "" {
		if err := checkTime("authn.expires", d.Authn.Expires); err != nil {
			return err
		}
	}
	if err := checkText("action", d.Action, maxName); err != nil {
		return err
	}
	if err := checkText("resource", d.Resource, maxText); err != nil {
		return err
	}
	if err := checkDigest("args_digest", d.ArgsDigest, false); err != nil {
		return err
	}
	if err := checkDigest("action_digest", d.ActionDigest, true); err != nil {
		return err
	}
	if err := checkSPIFFEID("broker", d.Broker, false); err != nil {
		return err
	}
	if err := checkDigest("capabilities_digest", d.CapabilitiesDigest, false); err != nil {
		return err
	}
	if u := d.User; u != nil {
		if err := checkText("user.issuer", u.Issuer, maxText); err != nil {
			return err
		}
		if err := checkText("user.subject", u.Subject, maxText); err != nil {
			return err
		}
		for i, s := range u.Scopes {
			if err := checkText(fmt.Sprintf("user.scopes[%d]", i), s, maxName); err != nil {
				return err
			}
		}
	}
	if a := d.Attestation; a != nil {
		if err := a.validate("attestation"); err != nil {
			return err
		}
	}
	for i, f := range d.Findings {
		p := fmt.Sprintf("findings[%d]", i)
		if err := checkText(p+".type", f.Type, maxName); err != nil {
			return err
		}
		if err := checkOptionalText(p+".arg", f.Arg, maxName); err != nil {
			return err
		}
		if err := checkOptionalText(p+".rule", f.Rule, maxName); err != nil {
			return err
		}
		if f.Offset < 0 || f.Length < 0 {
			return fieldErr(p, "offset and length must not be negative")
		}
	}
	switch d.Effect {
	case Allow:
	case Deny:
		if len(d.Reasons) == 0 {
			return fieldErr("reasons", "a deny needs at least one reason")
		}
	default:
		return fieldErr("decision", "want allow or deny, got %q", d.Effect)
	}
	for i, r := range d.Reasons {
		p := fmt.Sprintf("reasons[%d]", i)
		if err := checkText(p+".code", r.Code, maxName); err != nil {
			return err
		}
		if err := checkOptionalText(p+".message", r.Message, maxText); err != nil {
			return err
		}
	}
	if err := d.Policy.validate("policy."); err != nil {
		return err
	}
	if r := d.Receipt; r != nil {
		if d.Effect != Allow {
			return fieldErr("receipt", "only an allow carries a receipt")
		}
		if err := checkText("receipt.id", r.ID, maxName); err != nil {
			return err
		}
		if err := checkText("receipt.kid", r.KeyID, maxName); err != nil {
			return err
		}
		if err := checkSPIFFEID("receipt.audience", r.Audience, true); err != nil {
			return err
		}
		if err := checkTime("receipt.expires", r.Expires); err != nil {
			return err
		}
	}
	return nil
}

// validate checks the reference; prefix is prepended to field names.
func (p PolicyRef) validate(prefix string) error {
	if err := checkDigest("hash", p.Hash, true); err != nil {
		return under(prefix, err)
	}
	if err := checkText("engine", p.Engine, maxName); err != nil {
		return under(prefix, err)
	}
	if err := checkOptionalText("revision", p.Revision, maxName); err != nil {
		return under(prefix, err)
	}
	return nil
}

func (a *Attestation) validate(field string) error {
	if err := checkDigest(".digest", a.Digest, true); err != nil {
		return under(field, err)
	}
	if len(a.Envelope) > 0 {
		// jsontext's check is twice as fast as encoding/json's and
		// stricter (duplicate names, invalid UTF-8), which the encoder's
		// canonicalization refuses anyway; here the field is named.
		if a.Envelope[0] != '{' || !jsontext.Value(a.Envelope).IsValid() {
			return fieldErr(field+".envelope", "not a JSON object")
		}
	}
	for i, c := range a.Chain {
		if _, ok := isBase64(c); !ok || c == "" {
			return fieldErr(fmt.Sprintf("%s.chain[%d]", field, i), "not standard base64 DER")
		}
	}
	if len(a.Claims) > maxLabels {
		return fieldErr(field+".claims", "more than %d claims", maxLabels)
	}
	for k, v := range a.Claims {
		if err := checkText(".claims key", k, maxName); err != nil {
			return under(field, err)
		}
		if err := checkOptionalText("", v, maxText); err != nil {
			return under(field+".claims["+k+"]", err)
		}
	}
	return nil
}

// Result records a broker's signed report of work it ran for an allowed
// decision.
type Result struct {
	Header
	// Time the result was committed (entry time form).
	Time          string `json:"time"`
	CorrelationID string `json:"correlation_id"`
	// DecisionIndex and DecisionLeafHash (base64) link to the allow.
	DecisionIndex    uint64 `json:"decision_index"`
	DecisionLeafHash string `json:"decision_leaf_hash"`
	// ActionDigest must equal the decision's.
	ActionDigest string `json:"action_digest"`
	// Broker is the SPIFFE ID that signed the statement (the receipt's audience).
	Broker string `json:"broker"`
	// ReceiptID is the one-time id of the receipt the broker honoured.
	ReceiptID string `json:"receipt_id"`
	// Outcome summarizes the statement: "ok", "failed" (non-zero exit) or
	// "error" (did not start); ExitStatus when the process ran.
	Outcome    string `json:"outcome"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	// Statement is the DSSE-signed broker-result statement.
	Statement Attestation `json:"statement"`
}

func (*Result) EntryKind() Kind   { return KindResult }
func (r *Result) header() *Header { return &r.Header }

// Validate checks every field of the result.
func (r *Result) Validate() error {
	if err := checkTime("time", r.Time); err != nil {
		return err
	}
	if err := checkText("correlation_id", r.CorrelationID, maxName); err != nil {
		return err
	}
	if r.DecisionIndex > 1<<53-1 {
		return fieldErr("decision_index", "larger than 2^53-1")
	}
	if n, ok := isBase64(r.DecisionLeafHash); !ok || n != 32 {
		return fieldErr("decision_leaf_hash", "want the base64 of a 32-byte hash")
	}
	if err := checkDigest("action_digest", r.ActionDigest, true); err != nil {
		return err
	}
	if err := checkSPIFFEID("broker", r.Broker, true); err != nil {
		return err
	}
	if err := checkText("receipt_id", r.ReceiptID, maxName); err != nil {
		return err
	}
	switch r.Outcome {
	case "ok", "failed", "error":
	default:
		return fieldErr("outcome", "want ok, failed or error, got %q", r.Outcome)
	}
	return r.Statement.validate("statement")
}

// Agent operations.
const (
	AgentRegister = "register"
	AgentRevoke   = "revoke"
)

// Agent records a change to the agent registry.
type Agent struct {
	Header
	Time          string `json:"time"`
	CorrelationID string `json:"correlation_id"`
	// Op is "register" (create or replace) or "revoke".
	Op string `json:"op"`
	// ID is the agent's SPIFFE ID.
	ID string `json:"id"`
	// Owner is who answers for the agent.
	Owner string `json:"owner,omitempty"`
	// Brokers the agent may hand work to (SPIFFE IDs).
	Brokers []string `json:"brokers,omitempty"`
	// Labels are free key/value metadata that policy can read.
	Labels map[string]string `json:"labels,omitempty"`
	// Aliases are actor names (as the older ZT control plane used them)
	// bound to ID: POST /actions accepts them as the caller's actor.
	Aliases []string `json:"aliases,omitempty"`
	// By is the SPIFFE ID of the administrator who made the change.
	By string `json:"by"`
}

func (*Agent) EntryKind() Kind   { return KindAgent }
func (a *Agent) header() *Header { return &a.Header }

// Validate checks every field of the agent change.
func (a *Agent) Validate() error {
	if err := checkTime("time", a.Time); err != nil {
		return err
	}
	if err := checkText("correlation_id", a.CorrelationID, maxName); err != nil {
		return err
	}
	if a.Op != AgentRegister && a.Op != AgentRevoke {
		return fieldErr("op", "want register or revoke, got %q", a.Op)
	}
	if err := checkSPIFFEID("id", a.ID, true); err != nil {
		return err
	}
	if err := checkOptionalText("owner", a.Owner, maxText); err != nil {
		return err
	}
	for i, b := range a.Brokers {
		if err := checkSPIFFEID(fmt.Sprintf("brokers[%d]", i), b, true); err != nil {
			return err
		}
	}
	if len(a.Labels) > maxLabels {
		return fieldErr("labels", "more than %d labels", maxLabels)
	}
	for k, v := range a.Labels {
		if err := checkText("labels key", k, maxName); err != nil {
			return err
		}
		if err := checkOptionalText("labels["+k+"]", v, maxText); err != nil {
			return err
		}
	}
	if err := checkAliases("aliases", a.Aliases); err != nil {
		return err
	}
	if a.Op == AgentRevoke && len(a.Aliases) > 0 {
		return fieldErr("aliases", "a revoke carries no aliases")
	}
	return checkSPIFFEID("by", a.By, true)
}

// Policy records a policy version coming into force.
type Policy struct {
	Header
	Time string `json:"time"`
	// Hash is the policy hash decisions carry.
	Hash string `json:"hash"`
	// Engine is "opa" or "cedar" (or another registered engine).
	Engine string `json:"engine"`
	// Revision is the operator's name for the version (e.g. a VCS revision).
	Revision string `json:"revision,omitempty"`
	// SourceDigest is the digest of the policy source as loaded.
	SourceDigest string `json:"source_digest"`
	// LoadedBy says who or what loaded it (an admin SPIFFE ID, "startup",
	// "sighup", "file-change").
	LoadedBy string `json:"loaded_by"`
}

func (*Policy) EntryKind() Kind   { return KindPolicy }
func (p *Policy) header() *Header { return &p.Header }

// Validate checks every field of the policy version.
func (p *Policy) Validate() error {
	if err := checkTime("time", p.Time); err != nil {
		return err
	}
	if err := (PolicyRef{Hash: p.Hash, Engine: p.Engine, Revision: p.Revision}).validate(""); err != nil {
		return err
	}
	if err := checkDigest("source_digest", p.SourceDigest, true); err != nil {
		return err
	}
	return checkText("loaded_by", p.LoadedBy, maxText)
}

// ValidSPIFFEID reports whether s is a well-formed SPIFFE ID.
func ValidSPIFFEID(s string) error {
	if _, err := spiffeid.FromString(s); err != nil {
		return fmt.Errorf("not a SPIFFE ID: %w", err)
	}
	return nil
}
