package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"
)

// The assurance levels of an allow (Decision.Assurance; contract/receipt/receipt.md,
// "Witnessed receipts").
const (
	// Sequenced: the allow was answered once its entry was durably
	// sequenced in the log.
	Sequenced = "sequenced"
	// Witnessed: the receipt carries the entry's inclusion proof in a
	// checkpoint the issuer says its witness quorum cosigned. The SDK
	// checks that evidence's form only; the broker verifies the
	// cosignatures under its trust policy.
	Witnessed = "witnessed"
)

// Leeway is the clock skew the SDK tolerates on a receipt's iat and exp.
const Leeway = 5 * time.Second

// ErrInconsistent: the answer is not a well-formed decision, or does not
// match the request or its own receipt (another action, another correlation
// id, another index, leaf hash or subject). Wrapped in ErrNoDecision.
var ErrInconsistent = errors.New("ztlog: inconsistent answer")

// errNotJSON marks a body that is not a decision at all.
var errNotJSON = errors.New("the answer is not a decision")

// Expect is what an answer must match: what the SDK asked, and whom it
// trusts. The shared SDK vectors (testdata/sdk) are written in these terms.
type Expect struct {
	// Actor is the agent's authenticated SPIFFE ID (the receipt's subject).
	Actor string
	// Action and Resource, when set, must be the answer's (the action
	// digest covers them too; these name them in the error).
	Action, Resource string
	// Issuer is the trusted log origin; required for an allow.
	Issuer string
	// Broker is the broker asked for (the receipt's audience); "" accepts
	// the receipt's own audience.
	Broker string
	// ActionDigest is the digest the SDK computed from what it asked.
	ActionDigest string
	// CorrelationID is the request's correlation id.
	CorrelationID string
	// Now is the verification time; Leeway the tolerated skew.
	Now    time.Time
	Leeway time.Duration
}

// VerifyAnswer checks one answer of POST /v1/actions — its HTTP status and
// body — against want, verifying an allow's receipt with keys. It is pure:
// no I/O, no clock. It returns a Decision (Allow true or false) only for a
// verified, committed answer; otherwise an error wrapping ErrInconsistent
// or one of the receipt package's errors (receipt.ErrMalformed,
// ErrUnknownKey, ErrSignature, ErrExpired, ErrMismatch). Decide runs
// exactly these checks.
func VerifyAnswer(status int, body []byte, keys *jose.JSONWebKeySet, want Expect) (*Decision, error) {
	d, err := ParseAnswer(status, body)
	if err != nil {
		return nil, err
	}
	if err := CheckAnswer(d, keys, want); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseAnswer reads an answer of POST /v1/actions: HTTP 200 carrying an
// allow or 403 carrying a deny, each with log evidence. It verifies nothing
// else; see CheckAnswer.
func ParseAnswer(status int, body []byte) (*Decision, error) {
	switch status {
	case http.StatusOK, http.StatusForbidden:
	default:
		return nil, serviceError(status, body)
	}
	d := &Decision{}
	if err := json.Unmarshal(body, &d.Response); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrInconsistent, errNotJSON, err)
	}
	ar := &d.Response
	switch {
	case status == http.StatusOK && ar.Decision != "allow":
		return nil, fmt.Errorf("%w: HTTP 200 but decision %q", ErrInconsistent, ar.Decision)
	case status == http.StatusForbidden && ar.Decision != "deny":
		return nil, fmt.Errorf("%w: HTTP 403 but decision %q", ErrInconsistent, ar.Decision)
	case ar.Log.LeafHash == "":
		return nil, fmt.Errorf("%w: the answer carries no log evidence", ErrInconsistent)
	}
	d.Allow = ar.Decision == "allow"
	d.CorrelationID = ar.CorrelationID
	return d, nil
}

// CheckAnswer checks a parsed answer against want: the action digest and
// correlation id, and for an allow the receipt (verified with keys) and
// that it names the answer's index, leaf hash and the agent. On success it
// fills d.ActionDigest, and for an allow d.Receipt, d.Token and d.Assurance.
func CheckAnswer(d *Decision, keys *jose.JSONWebKeySet, want Expect) error {
	ar := &d.Response
	if (want.Action != "" && ar.Action != want.Action) || (want.Resource != "" && ar.Resource != want.Resource) {
		return fmt.Errorf("%w: the answer is about %q on %q, not %q on %q", ErrInconsistent,
			text.Cut(ar.Action, 100), text.Cut(ar.Resource, 200), want.Action, want.Resource)
	}
	if ar.ActionDigest != want.ActionDigest {
		return fmt.Errorf("%w: the answer is about action %s, the SDK asked for %s", ErrInconsistent, ar.ActionDigest, want.ActionDigest)
	}
	if ar.CorrelationID != want.CorrelationID {
		return fmt.Errorf("%w: the answer's correlation id %q is not the request's %q", ErrInconsistent, ar.CorrelationID, want.CorrelationID)
	}
	if !d.Allow {
		d.ActionDigest = want.ActionDigest
		return nil
	}
	if ar.Receipt == "" {
		return fmt.Errorf("%w: an allow without a receipt", ErrInconsistent)
	}
	aud := want.Broker
	if aud == "" {
		r, err := receipt.Parse(ar.Receipt)
		if err != nil {
			return err
		}
		aud = r.Claims.Audience
	}
	// The agent holds no witness policy: a witnessed receipt's form is
	// checked here, its checkpoint by the broker (testdata/sdk/README.md).
	claims, err := receipt.Verify(ar.Receipt, keys, receipt.Expect{Issuer: want.Issuer, Audience: aud,
		ActionDigest: want.ActionDigest, Now: want.Now, Leeway: want.Leeway, DeferWitnessCheck: true})
	if err != nil {
		return fmt.Errorf("the receipt does not verify: %w", err)
	}
	switch {
	case claims.LogIndex != ar.Log.Index:
		return fmt.Errorf("%w: the receipt is for log index %d, the answer says %d", ErrInconsistent, claims.LogIndex, ar.Log.Index)
	case claims.LeafHash != ar.Log.LeafHash:
		return fmt.Errorf("%w: the receipt is for leaf hash %s, the answer says %s", ErrInconsistent, claims.LeafHash, ar.Log.LeafHash)
	case claims.Subject != want.Actor:
		return fmt.Errorf("%w: the receipt is for %s, this agent is %s", ErrInconsistent, claims.Subject, want.Actor)
	}
	d.ActionDigest, d.Receipt, d.Token = want.ActionDigest, claims, ar.Receipt
	d.Assurance = Sequenced
	if claims.Assurance == receipt.Witnessed {
		d.Assurance = Witnessed
	}
	return nil
}

// ServiceError is the service's error answer (neither an allow nor a
// deny): the HTTP status, the error body's code, field and message, and
// the body as received. Decide wraps it in ErrNoDecision or ErrAmbiguous.
type ServiceError struct {
	Status               int
	Code, Field, Message string
	Body                 []byte
}

func (e *ServiceError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, text.Cut(string(e.Body), 200))
	}
	return fmt.Sprintf("HTTP %d %s (%s): %s", e.Status, e.Code, e.Field, e.Message)
}

// serviceError reads an error answer.
func serviceError(status int, body []byte) *ServiceError {
	e := &ServiceError{Status: status, Body: body}
	var b httperr.Error
	if json.Unmarshal(body, &b) == nil {
		e.Code, e.Field, e.Message = b.Code, b.Field, b.Message
	}
	return e
}
