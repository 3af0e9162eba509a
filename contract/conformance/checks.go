package conformance

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// spec is where the MUSTs are written down.
const spec = "contract/conformance/README.md#"

// check is one check and how to run it.
type check struct {
	Check
	// needs are checks that must have passed for this one to run.
	needs []string
	run   func(ctx context.Context, s *suite) (string, error)
}

// The checks, in run order. IDs are stable: never renumber, only add.
var checks = []check{
	{Check{"ZT-WK-001", "/.well-known/ztlog publishes the origin, the note verifier key and the receipt JWKS", spec + "must-publish-keys"}, nil, checkWellKnown},
	{Check{"ZT-AUTH-001", "a request without credentials is refused with 401 and nothing is committed", spec + "must-authenticate"}, []string{"ZT-WK-001"}, checkUnauthenticated},
	{Check{"ZT-AUTH-002", "a request with an invalid bearer token is refused with 401 and nothing is committed", spec + "must-authenticate"}, []string{"ZT-WK-001"}, checkBadBearer},
	{Check{"ZT-REQ-001", "a malformed JSON body is refused with 400 and an error body, nothing committed", spec + "must-strict-body"}, []string{"ZT-WK-001"}, checkMalformed},
	{Check{"ZT-REQ-002", "a body with an unknown member is refused with 4xx naming it, nothing committed", spec + "must-strict-body"}, []string{"ZT-WK-001"}, checkUnknownField},
	{Check{"ZT-REQ-003", "a body with a member of the wrong type is refused with 4xx naming it, nothing committed", spec + "must-strict-body"}, []string{"ZT-WK-001"}, checkWrongType},
	{Check{"ZT-ACTOR-001", "a body actor that differs from the authenticated identity is never an allow", spec + "must-actor-authenticated"}, []string{"ZT-WK-001"}, checkActorMismatch},
	{Check{"ZT-DENY-001", "a deny is answered 403 with the decision, reasons, action digest and log evidence", spec + "must-answer-evidence"}, []string{"ZT-WK-001"}, checkDeny},
	{Check{"ZT-DENY-002", "a deny is committed: its entry is readable at its index and its leaf hash matches", spec + "must-commit-before-answer"}, []string{"ZT-DENY-001"}, checkDenyCommitted},
	{Check{"ZT-ALLOW-001", "an allow's receipt verifies against the published JWKS with the claims the spec requires", spec + "must-receipt-claims"}, []string{"ZT-WK-001"}, checkAllowReceipt},
	{Check{"ZT-ALLOW-002", "an allow is committed: its entry is readable at its index and its leaf hash matches", spec + "must-commit-before-answer"}, []string{"ZT-WK-001"}, checkAllowCommitted},
	{Check{"ZT-PROOF-001", "the decision's inclusion proof verifies against a checkpoint signed with the published key", spec + "must-inclusion-proof"}, []string{"ZT-WK-001"}, checkInclusion},
	{Check{"ZT-RESULT-001", "a result posted by the receipt's broker is committed and links to its decision", spec + "must-result-linked"}, []string{"ZT-ALLOW-001"}, checkResult},
	{Check{"ZT-RESULT-002", "a second, different result for the same decision is refused, nothing committed", spec + "must-one-result"}, []string{"ZT-RESULT-001"}, checkSecondResult},
	{Check{"ZT-COMPAT-001", "POST /actions answers in the ZT JavaScript SDK's shape, with committed log evidence", spec + "must-compat-actions"}, []string{"ZT-WK-001"}, checkCompat},
	{Check{"ZT-POSS-001", "POST /v1/actions/possible (optional) answers every action, never 'never' for an allowed one, with no receipt, nothing committed", spec + "must-possible-advisory"}, []string{"ZT-WK-001"}, checkPossible},
}

func checkWellKnown(ctx context.Context, s *suite) (string, error) {
	if err := s.getJSON(ctx, "/.well-known/ztlog", &s.wk); err != nil {
		return "", err
	}
	switch {
	case s.wk.Origin == "":
		return "", errors.New("/.well-known/ztlog: no origin")
	case s.wk.VerifierKey == "":
		return "", errors.New("/.well-known/ztlog: no verifier_key")
	case len(s.wk.ReceiptJWKS) == 0:
		return "", errors.New("/.well-known/ztlog: no receipt_jwks")
	}
	pol, err := trustpolicy.Parse([]byte("log " + s.wk.VerifierKey + "\nquorum none\n"))
	if err != nil {
		return "", fmt.Errorf("/.well-known/ztlog: verifier_key %q is not a note verifier key: %w", s.wk.VerifierKey, err)
	}
	if l := pol.LogFor(s.wk.Origin); l == nil {
		return "", fmt.Errorf("/.well-known/ztlog: the verifier key is not for origin %q", s.wk.Origin)
	}
	s.policy = pol
	if _, err := receipt.ParseJWKS(s.wk.ReceiptJWKS); err != nil {
		return "", fmt.Errorf("/.well-known/ztlog: receipt_jwks: %w", err)
	}
	a, err := s.do(ctx, s.agentHTTP, http.MethodGet, "/v1/receipts/jwks.json", nil, nil)
	if err != nil {
		return "", err
	}
	if a.status != http.StatusOK {
		return "", fmt.Errorf("GET /v1/receipts/jwks.json: %s", a)
	}
	if s.jwks, err = receipt.ParseJWKS(a.body); err != nil {
		return "", fmt.Errorf("GET /v1/receipts/jwks.json: %w", err)
	}
	s.audience = s.wk.DefaultBroker
	if !s.broker.IsZero() {
		s.audience = s.broker.String()
	}
	if _, err := s.checkpoint(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("origin %s, %d receipt keys", s.wk.Origin, len(s.jwks.Keys)), nil
}

// refused runs one request that must be refused with a status in want,
// between fences, and checks that nothing was committed.
func (s *suite) refused(ctx context.Context, what string, want func(int) bool, send func() (*answer, error), inspect func(*answer) error) (string, error) {
	var got *answer
	err := s.nothingCommitted(ctx, what, func() error {
		a, err := send()
		if err != nil {
			return err
		}
		got = a
		if !want(a.status) {
			return fmt.Errorf("%s: want it refused, got %s", what, a)
		}
		if inspect != nil {
			return inspect(a)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("HTTP %d; log size unchanged at %d", got.status, s.mark-1), nil
}

func is(code int) func(int) bool   { return func(c int) bool { return c == code } }
func is4xx() func(int) bool        { return func(c int) bool { return c >= 400 && c < 500 } }
func (s *suite) allowBody() []byte { b, _ := json.Marshal(s.request(s.cfg.AllowAction, "")); return b }

func checkUnauthenticated(ctx context.Context, s *suite) (string, error) {
	return s.refused(ctx, "POST /v1/actions without a client certificate or token", is(http.StatusUnauthorized),
		func() (*answer, error) {
			return s.do(ctx, s.anonHTTP, http.MethodPost, "/v1/actions", s.allowBody(), nil)
		}, nil)
}

func checkBadBearer(ctx context.Context, s *suite) (string, error) {
	// A well-formed JWT whose signature is garbage.
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"conformance","typ":"JWT"}`))
	c := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":%q,"aud":["x"],"exp":%d}`, s.agent, s.cfg.Now().Add(time.Hour).Unix())))
	token := h + "." + c + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	return s.refused(ctx, "POST /v1/actions with a forged bearer token", is(http.StatusUnauthorized),
		func() (*answer, error) {
			return s.do(ctx, s.anonHTTP, http.MethodPost, "/v1/actions", s.allowBody(), map[string]string{"Authorization": "Bearer " + token})
		}, nil)
}

// namesField checks that an error answer names field.
func namesField(field string) func(*answer) error {
	return func(a *answer) error {
		e := a.errBody()
		if e == nil {
			return fmt.Errorf("the refusal carries no error body ({code, field, message}): %s", a)
		}
		if e.Field != field && !strings.Contains(e.Message, field) {
			return fmt.Errorf("the refusal does not name the field %q: code %q, field %q, message %q", field, e.Code, e.Field, e.Message)
		}
		return nil
	}
}

func checkMalformed(ctx context.Context, s *suite) (string, error) {
	body := []byte(`{"action": "` + s.cfg.AllowAction + `", "resource": `)
	return s.refused(ctx, "POST /v1/actions with truncated JSON", is(http.StatusBadRequest),
		func() (*answer, error) { return s.do(ctx, s.agentHTTP, http.MethodPost, "/v1/actions", body, nil) },
		func(a *answer) error {
			if a.errBody() == nil {
				return fmt.Errorf("the refusal carries no error body ({code, field, message}): %s", a)
			}
			return nil
		})
}

func checkUnknownField(ctx context.Context, s *suite) (string, error) {
	body, _ := json.Marshal(map[string]string{"action": s.cfg.AllowAction, "resource": s.cfg.Resource, "conformance_colour": "blue"})
	return s.refused(ctx, "POST /v1/actions with an unknown member", is4xx(),
		func() (*answer, error) { return s.do(ctx, s.agentHTTP, http.MethodPost, "/v1/actions", body, nil) },
		namesField("conformance_colour"))
}

func checkWrongType(ctx context.Context, s *suite) (string, error) {
	body, _ := json.Marshal(map[string]any{"action": 42, "resource": s.cfg.Resource})
	return s.refused(ctx, "POST /v1/actions with a number as action", is4xx(),
		func() (*answer, error) { return s.do(ctx, s.agentHTTP, http.MethodPost, "/v1/actions", body, nil) },
		namesField("action"))
}

func checkActorMismatch(ctx context.Context, s *suite) (string, error) {
	other, err := spiffeid.FromSegments(s.agent.TrustDomain(), "agent", "conformance-impostor")
	if err != nil {
		return "", err
	}
	d, err := s.decide(ctx, s.request(s.cfg.AllowAction, other.String()))
	if err != nil {
		return "", err
	}
	switch {
	case d.status == http.StatusOK:
		return "", fmt.Errorf("authenticated as %s, claiming %s: allowed (log index %d)", s.agent, other, d.resp.Log.Index)
	case d.status == http.StatusForbidden && d.resp.Decision == "allow":
		return "", fmt.Errorf("HTTP 403 whose decision is allow")
	case d.status == http.StatusForbidden && d.resp.Actor != s.agent.String():
		return "", fmt.Errorf("the deny names actor %q, not the authenticated %s", d.resp.Actor, s.agent)
	case d.status == http.StatusForbidden && d.resp.Receipt != "":
		return "", fmt.Errorf("the deny carries a receipt")
	case d.status == http.StatusForbidden:
		return fmt.Sprintf("denied, log index %d", d.resp.Log.Index), nil
	case d.status >= 400 && d.status < 500:
		return fmt.Sprintf("refused with HTTP %d", d.status), nil
	}
	return "", fmt.Errorf("want a deny or a 4xx refusal, got HTTP %d", d.status)
}

// evidence checks the fields every decision answer carries.
func (s *suite) evidence(d *decided, effect string) error {
	r := &d.resp
	switch {
	case r.Decision != effect:
		return fmt.Errorf("decision %q, want %q", r.Decision, effect)
	case r.ActionDigest != d.digest:
		return fmt.Errorf("action_digest %s; the digest of what was asked (contract/entry/entry.md) is %s", r.ActionDigest, d.digest)
	case r.Actor != s.agent.String():
		return fmt.Errorf("actor %q, want the authenticated %s", r.Actor, s.agent)
	case r.Action != d.req.Action || r.Resource != d.req.Resource:
		return fmt.Errorf("the answer is about %q on %q, not %q on %q", r.Action, r.Resource, d.req.Action, d.req.Resource)
	case r.Log.Origin != s.wk.Origin:
		return fmt.Errorf("log.origin %q, the target's origin is %q", r.Log.Origin, s.wk.Origin)
	case r.Log.LeafHash == "":
		return errors.New("no log.leaf_hash")
	case r.Policy.Hash == "":
		return errors.New("no policy.hash")
	case len(r.Reasons) == 0:
		return errors.New("no reasons")
	}
	return nil
}

func checkDeny(ctx context.Context, s *suite) (string, error) {
	d, err := s.decide(ctx, s.request(s.cfg.DenyAction, ""))
	if err != nil {
		return "", err
	}
	if d.status != http.StatusForbidden {
		return "", fmt.Errorf("%s on %s: want 403, got HTTP %d: %s", d.req.Action, d.req.Resource, d.status, string(d.raw))
	}
	if err := s.evidence(d, "deny"); err != nil {
		return "", err
	}
	if d.resp.Receipt != "" {
		return "", errors.New("a deny carries a receipt")
	}
	s.deny = d
	return fmt.Sprintf("log index %d", d.resp.Log.Index), nil
}

// committed checks the decision entry of d in the log.
func (s *suite) committed(ctx context.Context, d *decided, effect entry.Effect) (*entry.Decision, error) {
	if _, err := s.awaitSize(ctx, d.resp.Log.Index+1); err != nil {
		return nil, err
	}
	e, _, err := s.entryAt(ctx, d.resp.Log.Index, d.resp.Log.LeafHash)
	if err != nil {
		return nil, err
	}
	de, ok := e.(*entry.Decision)
	switch {
	case !ok:
		return nil, fmt.Errorf("entry %d is a %s entry, not a decision", d.resp.Log.Index, e.EntryKind())
	case de.Effect != effect:
		return nil, fmt.Errorf("entry %d records %q, the answer said %q", d.resp.Log.Index, de.Effect, effect)
	case de.ActionDigest != d.digest:
		return nil, fmt.Errorf("entry %d is about action %s, the request's digest is %s", d.resp.Log.Index, de.ActionDigest, d.digest)
	case de.Actor != s.agent.String():
		return nil, fmt.Errorf("entry %d records actor %q, not %s", d.resp.Log.Index, de.Actor, s.agent)
	case de.Policy.Hash != d.resp.Policy.Hash:
		return nil, fmt.Errorf("entry %d records policy %s, the answer %s", d.resp.Log.Index, de.Policy.Hash, d.resp.Policy.Hash)
	}
	return de, nil
}

func checkDenyCommitted(ctx context.Context, s *suite) (string, error) {
	if _, err := s.committed(ctx, s.deny, entry.Deny); err != nil {
		return "", err
	}
	return fmt.Sprintf("entry %d, leaf hash %s", s.deny.resp.Log.Index, s.deny.resp.Log.LeafHash), nil
}

func checkAllowReceipt(ctx context.Context, s *suite) (string, error) {
	d, err := s.decide(ctx, s.request(s.cfg.AllowAction, ""))
	if err != nil {
		return "", err
	}
	if d.status != http.StatusOK {
		return "", fmt.Errorf("%s on %s: want 200 (allow), got HTTP %d: %s (is it allowed by the target's policy? see Config.AllowAction)",
			d.req.Action, d.req.Resource, d.status, string(d.raw))
	}
	s.allow = d
	if err := s.evidence(d, "allow"); err != nil {
		return "", err
	}
	if d.resp.Receipt == "" {
		return "", errors.New("an allow without a receipt")
	}
	aud := s.audience
	if aud == "" {
		r, err := receipt.Parse(d.resp.Receipt)
		if err != nil {
			return "", err
		}
		aud = r.Claims.Audience
	}
	c, err := receipt.Verify(d.resp.Receipt, s.jwks, receipt.Expect{Issuer: s.wk.Origin, Audience: aud,
		ActionDigest: d.digest, Now: s.cfg.Now(), Leeway: 5 * time.Second})
	if err != nil {
		return "", fmt.Errorf("the receipt does not verify against /v1/receipts/jwks.json: %w", err)
	}
	switch {
	case c.Subject != s.agent.String():
		return "", fmt.Errorf("receipt sub %q, want %s", c.Subject, s.agent)
	case c.LogIndex != d.resp.Log.Index:
		return "", fmt.Errorf("receipt log_index %d, the answer's index is %d", c.LogIndex, d.resp.Log.Index)
	case c.LeafHash != d.resp.Log.LeafHash:
		return "", fmt.Errorf("receipt leaf_hash %s, the answer's is %s", c.LeafHash, d.resp.Log.LeafHash)
	case c.PolicyHash != d.resp.Policy.Hash:
		return "", fmt.Errorf("receipt policy_hash %s, the answer's is %s", c.PolicyHash, d.resp.Policy.Hash)
	case c.Decision != "allow":
		return "", fmt.Errorf("receipt decision %q", c.Decision)
	case c.Expiry <= c.IssuedAt:
		return "", fmt.Errorf("receipt exp %d is not after iat %d", c.Expiry, c.IssuedAt)
	case c.ID == "":
		return "", errors.New("receipt has no jti")
	}
	return fmt.Sprintf("log index %d, audience %s, expires in %s", c.LogIndex, c.Audience,
		time.Unix(c.Expiry, 0).Sub(s.cfg.Now()).Round(time.Second)), nil
}

func checkAllowCommitted(ctx context.Context, s *suite) (string, error) {
	if s.allow == nil {
		return "", errors.New("no allow answer to check (see ZT-ALLOW-001)")
	}
	de, err := s.committed(ctx, s.allow, entry.Allow)
	if err != nil {
		return "", err
	}
	if de.Receipt == nil {
		return "", fmt.Errorf("entry %d records no receipt", s.allow.resp.Log.Index)
	}
	if r, err := receipt.Parse(s.allow.resp.Receipt); err == nil && r.Claims.ID != de.Receipt.ID {
		return "", fmt.Errorf("entry %d records receipt %s, the answer's receipt is %s", s.allow.resp.Log.Index, de.Receipt.ID, r.Claims.ID)
	}
	return fmt.Sprintf("entry %d, leaf hash %s", s.allow.resp.Log.Index, s.allow.resp.Log.LeafHash), nil
}

func checkInclusion(ctx context.Context, s *suite) (string, error) {
	d := s.allow
	if d == nil {
		d = s.deny
	}
	if d == nil {
		return "", errors.New("no decision to prove (see ZT-DENY-001 and ZT-ALLOW-001)")
	}
	i := d.resp.Log.Index
	cp, err := s.awaitSize(ctx, i+1)
	if err != nil {
		return "", err
	}
	var er entryResponse
	if err := s.getJSON(ctx, fmt.Sprintf("/v1/entries/%d?size=%d", i, cp.Size), &er); err != nil {
		return "", fmt.Errorf("entry %d with its proof to size %d: %w", i, cp.Size, err)
	}
	if er.TreeSize != cp.Size {
		return "", fmt.Errorf("asked for a proof to size %d, got one to size %d", cp.Size, er.TreeSize)
	}
	path := make([][]byte, len(er.InclusionProof))
	for k, h := range er.InclusionProof {
		if path[k], err = base64.StdEncoding.DecodeString(h); err != nil {
			return "", fmt.Errorf("inclusion_proof[%d] is not base64: %w", k, err)
		}
	}
	lh, err := base64.StdEncoding.DecodeString(d.resp.Log.LeafHash)
	if err != nil {
		return "", fmt.Errorf("the answer's leaf hash is not base64: %w", err)
	}
	if err := proof.Inclusion(cp, i, lh, path); err != nil {
		return "", fmt.Errorf("the answer's leaf hash at index %d: %w", i, err)
	}
	return fmt.Sprintf("entry %d included in the signed checkpoint of size %d", i, cp.Size), nil
}

// resultStatement signs a broker-result statement for the allow, as a
// broker that performed it would.
func (s *suite) resultStatement(ctx context.Context, outcome string, exit int) (*attest.Signed, error) {
	c, err := receipt.Parse(s.allow.resp.Receipt)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	empty := attest.Output{Digest: entry.Digest(nil)}
	p := &attest.BrokerResult{
		Decision:  attest.DecisionRef{Index: c.Claims.LogIndex, LeafHash: c.Claims.LeafHash},
		ReceiptID: c.Claims.ID, CorrelationID: c.Claims.CorrelationID,
		Outcome: outcome, Exit: &attest.Exit{Status: exit},
		StartedAt: attest.FormatTime(now), FinishedAt: attest.FormatTime(now),
		Outputs: attest.Outputs{Stdout: attest.Output{Digest: entry.Digest([]byte("conformance\n")), Size: 12}, Stderr: empty},
		Sandbox: attest.SandboxApplied{Kind: "none", Capabilities: entry.Digest(nil), Applied: []string{}},
	}
	svid, err := s.cfg.Broker.GetX509SVID()
	if err != nil {
		return nil, err
	}
	return attest.SignBrokerResult(ctx, svid, c.Claims.ActionDigest, p)
}

func checkResult(ctx context.Context, s *suite) (string, error) {
	if s.brokerHTTP == nil {
		return "", fmt.Errorf("%w: no broker identity given (Config.Broker)", errSkip)
	}
	st, err := s.resultStatement(ctx, attest.OutcomeOK, 0)
	if err != nil {
		return "", fmt.Errorf("signing the result: %w", err)
	}
	a, err := s.postResult(ctx, broker.ResultBody(st))
	if err != nil {
		return "", err
	}
	if a.status != http.StatusOK {
		return "", fmt.Errorf("POST /v1/results for decision %d: want 200, got %s", s.allow.resp.Log.Index, a)
	}
	var rr api.ResultResponse
	if err := json.Unmarshal(a.body, &rr); err != nil {
		return "", fmt.Errorf("POST /v1/results: the answer is not a result: %w", err)
	}
	if rr.DecisionIndex != s.allow.resp.Log.Index {
		return "", fmt.Errorf("the result links to decision %d, it was posted for %d", rr.DecisionIndex, s.allow.resp.Log.Index)
	}
	if _, err := s.awaitSize(ctx, rr.Log.Index+1); err != nil {
		return "", err
	}
	e, _, err := s.entryAt(ctx, rr.Log.Index, rr.Log.LeafHash)
	if err != nil {
		return "", err
	}
	re, ok := e.(*entry.Result)
	switch {
	case !ok:
		return "", fmt.Errorf("entry %d is a %s entry, not a result", rr.Log.Index, e.EntryKind())
	case re.DecisionIndex != s.allow.resp.Log.Index:
		return "", fmt.Errorf("result entry %d links to decision %d, want %d", rr.Log.Index, re.DecisionIndex, s.allow.resp.Log.Index)
	case re.DecisionLeafHash != s.allow.resp.Log.LeafHash:
		return "", fmt.Errorf("result entry %d links to leaf hash %s, the decision's is %s", rr.Log.Index, re.DecisionLeafHash, s.allow.resp.Log.LeafHash)
	case re.Broker != s.broker.String():
		return "", fmt.Errorf("result entry %d names broker %q, it was posted by %s", rr.Log.Index, re.Broker, s.broker)
	case re.Outcome != attest.OutcomeOK:
		return "", fmt.Errorf("result entry %d records outcome %q, the statement says ok", rr.Log.Index, re.Outcome)
	}
	s.result = &rr
	return fmt.Sprintf("result entry %d links to decision %d", rr.Log.Index, rr.DecisionIndex), nil
}

func checkSecondResult(ctx context.Context, s *suite) (string, error) {
	st, err := s.resultStatement(ctx, attest.OutcomeFailed, 1)
	if err != nil {
		return "", fmt.Errorf("signing the result: %w", err)
	}
	return s.refused(ctx, fmt.Sprintf("a second result for decision %d", s.allow.resp.Log.Index), is4xx(),
		func() (*answer, error) { return s.postResult(ctx, broker.ResultBody(st)) }, nil)
}

func checkCompat(ctx context.Context, s *suite) (string, error) {
	c, hdr := s.agentHTTP, map[string]string(nil)
	if s.cfg.JWT != "" {
		c, hdr = s.anonHTTP, map[string]string{"Authorization": "Bearer " + s.cfg.JWT}
	}
	post := func(action string) (*answer, *api.LegacyActionResponse, error) {
		body, _ := json.Marshal(api.LegacyActionRequest{Actor: s.agent.String(), Action: action, Resource: s.cfg.Resource})
		a, err := s.do(ctx, c, http.MethodPost, "/actions", body, hdr)
		if err != nil {
			return nil, nil, err
		}
		var lr api.LegacyActionResponse
		if err := json.Unmarshal(a.body, &lr); err != nil {
			return a, nil, fmt.Errorf("POST /actions (%s): the answer is not {ok, actor, action, resource, decision, reason, audit}: %s", action, a)
		}
		return a, &lr, nil
	}
	a, lr, err := post(s.cfg.AllowAction)
	if err != nil {
		return "", err
	}
	switch {
	case a.status != http.StatusOK:
		return "", fmt.Errorf("POST /actions %s: want 200, got %s", s.cfg.AllowAction, a)
	case !lr.OK || lr.Decision != "allow":
		return "", fmt.Errorf("POST /actions %s: HTTP 200 with ok=%v decision %q", s.cfg.AllowAction, lr.OK, lr.Decision)
	case lr.Actor != s.agent.String() || lr.Action != s.cfg.AllowAction || lr.Resource != s.cfg.Resource:
		return "", fmt.Errorf("POST /actions: the answer is about %q doing %q on %q", lr.Actor, lr.Action, lr.Resource)
	case lr.Audit.LeafHash == "" || lr.Audit.CorrelationID == "" || lr.Audit.PolicyHash == "":
		return "", fmt.Errorf("POST /actions: audit lacks leaf_hash, correlation_id or policy_hash: %s", a)
	case lr.Audit.Receipt == "":
		return "", errors.New("POST /actions: an allow's audit carries no receipt")
	}
	if _, err := s.awaitSize(ctx, lr.Audit.Index+1); err != nil {
		return "", err
	}
	if _, _, err := s.entryAt(ctx, lr.Audit.Index, lr.Audit.LeafHash); err != nil {
		return "", err
	}
	allowIndex := lr.Audit.Index
	a, lr, err = post(s.cfg.DenyAction)
	if err != nil {
		return "", err
	}
	switch {
	case a.status != http.StatusForbidden:
		return "", fmt.Errorf("POST /actions %s: want 403, got %s", s.cfg.DenyAction, a)
	case lr.OK || lr.Decision != "deny":
		return "", fmt.Errorf("POST /actions %s: HTTP 403 with ok=%v decision %q", s.cfg.DenyAction, lr.OK, lr.Decision)
	case lr.Reason == "" || lr.Audit.LeafHash == "":
		return "", fmt.Errorf("POST /actions %s: a deny without reason or audit.leaf_hash: %s", s.cfg.DenyAction, a)
	}
	auth := "X.509-SVID"
	if s.cfg.JWT != "" {
		auth = "JWT-SVID bearer"
	}
	return fmt.Sprintf("allow at %d, deny at %d (%s)", allowIndex, lr.Audit.Index, auth), nil
}

// checkPossible: POST /v1/actions/possible, when served, answers each
// action in order, never "never" for the action the policy allows, carries
// no receipt and commits nothing. Not served (404, 405): skipped.
func checkPossible(ctx context.Context, s *suite) (string, error) {
	asked := []string{s.cfg.AllowAction, s.cfg.DenyAction}
	body, _ := json.Marshal(api.PossibleRequest{Actions: asked})
	var resp api.PossibleResponse
	notServed := false
	// Earlier checks may have committed through requests that do not
	// reset the fence (POST /actions): measure afresh.
	s.fenced = false
	err := s.nothingCommitted(ctx, "POST /v1/actions/possible", func() error {
		a, err := s.do(ctx, s.agentHTTP, http.MethodPost, "/v1/actions/possible", body, nil)
		if err != nil {
			return err
		}
		if a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed {
			notServed = true
			return nil
		}
		if a.status != http.StatusOK {
			return fmt.Errorf("POST /v1/actions/possible: %s", a)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(a.body, &members); err != nil {
			return fmt.Errorf("POST /v1/actions/possible: not a JSON object: %w", err)
		}
		for name := range members {
			if strings.Contains(name, "receipt") || name == "log" || name == "decision" {
				return fmt.Errorf("POST /v1/actions/possible: the answer has a %q member; it is advisory and carries no receipt or log evidence", name)
			}
		}
		return json.Unmarshal(a.body, &resp)
	})
	if err != nil {
		return "", err
	}
	if notServed {
		return "", fmt.Errorf("%w: POST /v1/actions/possible is not served (optional)", errSkip)
	}
	if resp.Actor != s.agent.String() {
		return "", fmt.Errorf("the answer is about %q, not the authenticated %s", resp.Actor, s.agent)
	}
	if len(resp.Answers) != len(asked) {
		return "", fmt.Errorf("%d answers for %d actions", len(resp.Answers), len(asked))
	}
	for i, a := range resp.Answers {
		if a.Action != asked[i] {
			return "", fmt.Errorf("answer %d is about %q, asked %q", i, a.Action, asked[i])
		}
		if a.Answer != "never" && a.Answer != "possible" {
			return "", fmt.Errorf("answer %d is %q, want never or possible", i, a.Answer)
		}
	}
	if resp.Answers[0].Answer == "never" {
		return "", fmt.Errorf("%s, which the policy allows, is answered never", s.cfg.AllowAction)
	}
	if resp.Policy.Hash == "" {
		return "", errors.New("the answer names no policy hash")
	}
	return fmt.Sprintf("%s %s, %s %s under %s; log size unchanged", asked[0], resp.Answers[0].Answer, asked[1], resp.Answers[1].Answer, resp.Policy.Hash), nil
}
