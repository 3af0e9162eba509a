// Package results is POST /v1/results: a broker reports, with a signed
// broker-result statement (attest/attest.md), what it ran for an allowed
// decision, and the service commits it as a `result` entry linked to that
// decision — once per decision.
//
// The statement is accepted only when
//
//   - the caller is authenticated (X.509-SVID or JWT-SVID) and is the
//     statement's signer, whose X.509-SVID chain verifies against the trust
//     bundle now (a chain that verified before is not verified again while
//     the bundle's authorities and every certificate's validity still
//     hold: attest.ChainCache);
//   - the decision entry at the predicate's decision.index exists (a
//     checkpoint covering it is awaited, bounded), has the predicate's leaf
//     hash, is an allow, is about the statement's subject (the action
//     digest), and carries a receipt whose audience is the signer and whose
//     id is the predicate's receiptId;
//   - no result was committed for that decision before. The set of decisions
//     with a result is rebuilt from the log's result entries on start, so it
//     survives restarts. Posting the same statement again answers with the
//     entry already committed; any other second result is 409. "The same"
//     is the same signer and the same signed payload (the DSSE payload
//     bytes): an envelope re-encoded with other whitespace or member order,
//     as a broker's outbox may store and resend it, is the same statement.
//
// Anything else is refused with the contract's error shape and commits
// nothing. The result entry is appended and durably sequenced before the
// answer. Several frontends of one log agree on each decision's one result
// through Config.Claims (a claim row in their shared database) before
// appending; see Claims.
package results

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/correlation"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/httperr"
	ztlog "github.com/zt-infra/ztlog/log"
)

// Defaults.
const (
	// DefaultCommitTimeout bounds the append of a result entry.
	DefaultCommitTimeout = 2 * time.Second
	// DefaultDecisionWait bounds the wait for a published checkpoint that
	// covers the decision (a fast command can finish before one is out).
	DefaultDecisionWait = 5 * time.Second
	// MaxEnvelopeInEntry is the largest statement committed whole; above
	// it the entry keeps its digest, chain and claims.
	MaxEnvelopeInEntry = 32 << 10
)

// integrationLag is how far beyond the integrated tree a decision index
// may be and still be waited for: entries sequenced (answered) but not yet
// integrated, which with several frontends on one log is more than one
// batch.
const integrationLag = 1 << 16

// Error codes of POST /v1/results (besides the decoder's).
const (
	CodeStatementInvalid = "statement_invalid"  // does not verify (signature, chain, form)
	CodeSignerNotCaller  = "signer_not_caller"  // signed by another identity than the caller's
	CodeDecisionNotFound = "decision_not_found" // no entry at decision.index
	CodeDecisionMismatch = "decision_mismatch"  // the entry is not the allow the statement claims
	CodeNotAudience      = "not_receipt_audience"
	CodeResultExists     = "result_exists"
)

// Config wires the handler. Log, Auth and Bundles are required.
type Config struct {
	Log  *ztlog.Log
	Auth *identity.Authenticator
	// Bundles verify the statement's signer chain.
	Bundles       x509bundle.Source
	CommitTimeout time.Duration
	DecisionWait  time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Claims, when several frontends accept results for one log, decides
	// which statement becomes a decision's one result before any appends
	// it (see Claims). Nil: this process is the log's only frontend.
	Claims Claims
	// ClaimLease is DefaultClaimLease when zero.
	ClaimLease time.Duration
}

// committed is a result entry already in the log.
type committed struct {
	index     uint64
	leafHash  string
	statement string // digest of the envelope as received
	payload   string // digest of the signed payload ("" if unknown)
	broker    string // the signer
	outcome   string
	cid       string
}

// Service accepts results. Safe for concurrent use.
type Service struct {
	cfg     Config
	mu      sync.Mutex
	done    map[uint64]committed // decision index -> its result
	pending map[uint64]bool      // decision index -> a commit in flight
	results *prometheus.CounterVec
	refused *prometheus.CounterVec
	// chains are the statements' signer chains that verified.
	chains *attest.ChainCache
}

// Rebuild reads every result entry in the log and returns a Service that
// knows which decisions already have one. Like the agent registry, it first
// waits (bounded by ctx) for a checkpoint covering every integrated entry.
func Rebuild(ctx context.Context, cfg Config) (*Service, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.Log.Replay(ctx, s.Replay); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return s, nil
}

// New returns a Service that knows of no result yet; Replay tells it the
// log's entries (Rebuild does both).
func New(cfg Config) (*Service, error) {
	if cfg.Log == nil || cfg.Auth == nil || cfg.Bundles == nil {
		return nil, errors.New("results: Log, Auth and Bundles are required")
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	if cfg.DecisionWait <= 0 {
		cfg.DecisionWait = DefaultDecisionWait
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = DefaultClaimLease
	}
	s := &Service{cfg: cfg, done: map[uint64]committed{}, pending: map[uint64]bool{}, chains: attest.NewChainCache(0),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_results_total", Help: "Result entries committed, by outcome."}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_results_refused_total", Help: "Results refused, by error code."}, []string{"code"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.results, s.refused)
	}
	return s, nil
}

// Replay records the log entry at index if it is a result entry.
func (s *Service) Replay(index uint64, leaf []byte) error {
	if !bytes.Contains(leaf, []byte(`"kind":"result"`)) {
		return nil
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		return fmt.Errorf("results: entry %d looks like a result but does not parse: %w", index, err)
	}
	if r, ok := e.(*entry.Result); ok {
		s.mu.Lock()
		if prev, ok := s.done[r.DecisionIndex]; ok && prev.index <= index {
			// Already known (applied when it was committed here, or
			// followed before): the first result in log order stands.
			s.mu.Unlock()
			return nil
		}
		s.done[r.DecisionIndex] = committed{index: index, leafHash: leafHash(leaf), statement: r.Statement.Digest,
			payload: payloadDigest(r.Statement.Envelope), broker: r.Broker, outcome: r.Outcome, cid: r.CorrelationID}
		s.mu.Unlock()
	}
	return nil
}

// Len is the number of decisions with a committed result.
func (s *Service) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.done)
}

// ResultOf returns the index of the result entry committed for the
// decision at index, if there is one.
func (s *Service) ResultOf(decision uint64) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.done[decision]
	return c.index, ok
}

// Register adds POST /v1/results to r.
func (s *Service) Register(r *mux.Router) {
	r.HandleFunc("/v1/results", s.post).Methods(http.MethodPost)
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, status int, e *httperr.Error) {
	s.refused.WithLabelValues(e.Code).Inc()
	correlation.Annotate(r.Context(), slog.String("refused", e.Code), slog.String("field", e.Field))
	httperr.WriteError(w, status, e)
}

func (s *Service) post(w http.ResponseWriter, r *http.Request) {
	caller, err := s.cfg.Auth.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ztlog", error="invalid_token"`)
		s.refuse(w, r, http.StatusUnauthorized, &httperr.Error{Code: "unauthenticated", Field: "Authorization", Message: err.Error()})
		return
	}
	correlation.Annotate(r.Context(), slog.String("caller", caller.ID.String()))
	body, e, status := api.ReadBody(w, r)
	if e != nil {
		s.refuse(w, r, status, e)
		return
	}
	req, e := api.DecodeResultRequest(body)
	if e != nil {
		s.refuse(w, r, http.StatusBadRequest, e)
		return
	}
	raw := rawMember(body, "statement")
	chain, err := attest.DecodeChain(req.Chain)
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, &httperr.Error{Code: api.CodeInvalidField, Field: "chain", Message: err.Error()})
		return
	}
	now := s.cfg.Now()
	v, err := s.chains.Verify(r.Context(), raw, chain, s.cfg.Bundles, now, attest.BrokerResultType)
	if err != nil {
		s.refuse(w, r, http.StatusUnprocessableEntity, &httperr.Error{Code: CodeStatementInvalid, Field: "statement", Message: err.Error()})
		return
	}
	if v.Signer != caller.ID {
		s.refuse(w, r, http.StatusForbidden, &httperr.Error{Code: CodeSignerNotCaller, Field: "statement",
			Message: fmt.Sprintf("the statement is signed by %s, the caller is %s; a broker reports its own results", v.Signer, caller.ID)})
		return
	}
	p, err := attest.ParseBrokerResult(v.Predicate)
	if err != nil {
		s.refuse(w, r, http.StatusUnprocessableEntity, &httperr.Error{Code: CodeStatementInvalid, Field: "statement", Message: err.Error()})
		return
	}
	idx := p.Decision.Index
	d, lh, status, e := s.decision(r.Context(), idx)
	if e != nil {
		s.refuse(w, r, status, e)
		return
	}
	if e := check(d, lh, p, v); e != nil {
		status := http.StatusUnprocessableEntity
		if e.Code == CodeNotAudience {
			status = http.StatusForbidden
		}
		s.refuse(w, r, status, e)
		return
	}

	digest := attest.Digest(raw)
	payload := attest.Digest(v.Payload)
	s.mu.Lock()
	if prev, ok := s.done[idx]; ok {
		s.mu.Unlock()
		if prev.sameStatement(digest, payload, v.Signer.String()) {
			// The same statement again (a retry whose answer was lost).
			s.answer(w, idx, prev)
			return
		}
		s.refuse(w, r, http.StatusConflict, &httperr.Error{Code: CodeResultExists, Field: "statement",
			Message: fmt.Sprintf("decision %d already has a result (log index %d); a decision gets one result", idx, prev.index)})
		return
	}
	if s.pending[idx] {
		s.mu.Unlock()
		// Not a refusal: it may be this very statement, still being
		// sequenced after an earlier attempt gave up waiting.
		s.refused.WithLabelValues(codeBusy).Inc()
		w.Header().Set("Retry-After", "1")
		httperr.WriteError(w, http.StatusServiceUnavailable, busy(idx))
		return
	}
	s.pending[idx] = true
	s.mu.Unlock()
	// The mark stays until the entry's fate is known: an append that
	// ends waiting may still be sequenced, and a retry meanwhile must not
	// append the result a second time.
	unmark := func() {
		s.mu.Lock()
		delete(s.pending, idx)
		s.mu.Unlock()
	}
	owner, status, e := s.claim(r.Context(), idx, digest, now)
	if e != nil {
		unmark()
		if e.Code == codeBusy {
			s.refused.WithLabelValues(codeBusy).Inc()
			w.Header().Set("Retry-After", "1")
			httperr.WriteError(w, status, e)
			return
		}
		s.refuse(w, r, status, e)
		return
	}
	// release: nothing of this attempt is in flight any more (the log
	// answered an error), so a retry may claim the decision again at once.
	release := func() {
		unmark()
		if owner != "" {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommitTimeout)
			defer cancel()
			if err := s.cfg.Claims.Release(ctx, idx, owner); err != nil {
				s.cfg.Logger.Warn("result claim not released; a retry waits for its lease", "decision_index", idx, "error", err.Error())
			}
		}
	}

	re := resultEntry(now, d, p, v, raw, req.Chain, digest)
	leaf, err := entry.Marshal(re)
	if errors.Is(err, entry.ErrTooLarge) {
		re.Statement.Envelope = nil
		leaf, err = entry.Marshal(re)
	}
	if err != nil {
		release()
		s.refuse(w, r, http.StatusUnprocessableEntity, &httperr.Error{Code: CodeStatementInvalid, Field: "statement", Message: "the result entry cannot be encoded: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommitTimeout)
	defer cancel()
	resultLeafHash := leafHash(leaf)
	record := func(ri uint64) committed {
		c := committed{index: ri, leafHash: resultLeafHash, statement: digest, payload: payload, broker: v.Signer.String(), outcome: p.Outcome, cid: d.CorrelationID}
		s.mu.Lock()
		s.done[idx] = c
		delete(s.pending, idx)
		s.mu.Unlock()
		s.results.WithLabelValues(p.Outcome).Inc()
		return c
	}
	ri, err := s.cfg.Log.AppendThen(ctx, leaf, func(ri uint64, err error) {
		if err != nil {
			release()
			return
		}
		record(ri)
		s.cfg.Logger.Info("result committed after its request stopped waiting", "decision_index", idx, "result_index", ri, "outcome", p.Outcome, "correlation_id", d.CorrelationID)
	})
	if err != nil {
		if !errors.Is(err, ztlog.ErrAbandoned) {
			release() // the log answered: nothing is in flight
		}
		s.refused.WithLabelValues("commit_failed").Inc()
		s.cfg.Logger.Warn("result not committed", "error", err.Error(), "decision_index", idx)
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "commit_failed",
			Message: "the result could not be committed; post the same statement again: " + err.Error()})
		return
	}
	c := record(ri)
	s.cfg.Logger.Info("result committed", "decision_index", idx, "result_index", ri, "outcome", p.Outcome, "broker", v.Signer.String(), "correlation_id", d.CorrelationID)
	correlation.Annotate(r.Context(), slog.Uint64("decision_index", idx), slog.Uint64("result_index", ri))
	s.answer(w, idx, c)
}

func (s *Service) answer(w http.ResponseWriter, idx uint64, c committed) {
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, api.ResultResponse{DecisionIndex: idx, Outcome: c.outcome, CorrelationID: c.cid,
		Log: api.LogRef{Origin: s.cfg.Log.Origin(), Index: c.index, LeafHash: c.leafHash, EntryURL: "/v1/entries/" + strconv.FormatUint(c.index, 10)}})
}

// decision reads the decision entry at idx, waiting (bounded) for a
// published checkpoint that covers it.
func (s *Service) decision(ctx context.Context, idx uint64) (*entry.Decision, string, int, *httperr.Error) {
	n, err := s.cfg.Log.IntegratedSize(ctx)
	if err != nil {
		return nil, "", http.StatusServiceUnavailable, &httperr.Error{Code: "log_unavailable", Message: "cannot read the log: " + err.Error()}
	}
	notFound := func(n uint64) (*entry.Decision, string, int, *httperr.Error) {
		return nil, "", http.StatusNotFound, &httperr.Error{Code: CodeDecisionNotFound, Field: "statement",
			Message: fmt.Sprintf("the statement names decision %d; the log has %d entries", idx, n)}
	}
	if idx >= n+integrationLag {
		return notFound(n)
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.DecisionWait)
	defer cancel()
	if _, err := s.cfg.Log.Await(wctx, idx); err != nil {
		// Integration may lag sequencing (the AWS driver integrates in
		// the background, and another frontend may have answered the
		// decision): unknown only if it is still beyond the tree.
		if n, nerr := s.cfg.Log.IntegratedSize(ctx); nerr == nil && idx >= n {
			return notFound(n)
		}
		return nil, "", http.StatusServiceUnavailable, &httperr.Error{Code: "log_unavailable",
			Message: fmt.Sprintf("no published checkpoint covers decision %d yet (%v); post again shortly", idx, err)}
	}
	leaf, _, err := s.cfg.Log.Entry(ctx, idx)
	if err != nil {
		return nil, "", http.StatusServiceUnavailable, &httperr.Error{Code: "log_unavailable", Message: fmt.Sprintf("reading entry %d: %v", idx, err)}
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		return nil, "", http.StatusUnprocessableEntity, &httperr.Error{Code: CodeDecisionMismatch, Field: "statement",
			Message: fmt.Sprintf("entry %d does not parse: %v", idx, err)}
	}
	d, ok := e.(*entry.Decision)
	if !ok {
		return nil, "", http.StatusUnprocessableEntity, &httperr.Error{Code: CodeDecisionMismatch, Field: "statement",
			Message: fmt.Sprintf("entry %d is a %s entry, not a decision", idx, e.EntryKind())}
	}
	return d, leafHash(leaf), 0, nil
}

// check: the decision is the allow the statement claims to report on.
func check(d *entry.Decision, lh string, p *attest.BrokerResult, v *attest.Verified) *httperr.Error {
	mismatch := func(format string, a ...any) *httperr.Error {
		return &httperr.Error{Code: CodeDecisionMismatch, Field: "statement", Message: fmt.Sprintf(format, a...)}
	}
	switch {
	case lh != p.Decision.LeafHash:
		return mismatch("decision %d has leaf hash %s, the statement says %s", p.Decision.Index, lh, p.Decision.LeafHash)
	case d.Effect != entry.Allow:
		return mismatch("decision %d is a deny; nothing may run for it", p.Decision.Index)
	case d.ActionDigest != v.Subject:
		return mismatch("decision %d is about action %s, the statement about %s", p.Decision.Index, d.ActionDigest, v.Subject)
	case d.Receipt == nil:
		return mismatch("decision %d issued no receipt, so no broker may have run it", p.Decision.Index)
	case d.Receipt.Audience != v.Signer.String():
		return &httperr.Error{Code: CodeNotAudience, Field: "statement",
			Message: fmt.Sprintf("the receipt of decision %d is for %s, not %s", p.Decision.Index, d.Receipt.Audience, v.Signer)}
	case d.Receipt.ID != p.ReceiptID:
		return mismatch("decision %d issued receipt %s, the statement names %s", p.Decision.Index, d.Receipt.ID, p.ReceiptID)
	}
	return nil
}

func resultEntry(now time.Time, d *entry.Decision, p *attest.BrokerResult, v *attest.Verified, raw []byte, chain []string, digest string) *entry.Result {
	e := &entry.Result{
		Time: entry.FormatTime(now), CorrelationID: d.CorrelationID,
		DecisionIndex: p.Decision.Index, DecisionLeafHash: p.Decision.LeafHash, ActionDigest: d.ActionDigest,
		Broker: v.Signer.String(), ReceiptID: p.ReceiptID, Outcome: p.Outcome,
		Statement: entry.Attestation{Digest: digest, Chain: chain, Claims: attest.BrokerResultClaims(v.Signer, p)},
	}
	if p.Exit != nil && p.Exit.Status >= 0 {
		st := p.Exit.Status
		e.ExitStatus = &st
	}
	if len(raw) <= MaxEnvelopeInEntry {
		e.Statement.Envelope = raw
	}
	return e
}

// sameStatement reports whether a statement posted now (its envelope
// digest as received, its signed payload's digest, its signer) is the one
// committed: the same signer signed the same payload.
func (c committed) sameStatement(envelope, payload, signer string) bool {
	if c.statement == envelope {
		return true
	}
	return c.payload != "" && c.payload == payload && c.broker == signer
}

// payloadDigest is the digest of the signed payload of a committed
// envelope, or "" when the entry did not keep the envelope (larger than
// MaxEnvelopeInEntry) or it does not decode.
func payloadDigest(envelope []byte) string {
	if len(envelope) == 0 {
		return ""
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(envelope, &env) != nil {
		return ""
	}
	p, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil || len(p) == 0 {
		return ""
	}
	return attest.Digest(p)
}

func leafHash(leaf []byte) string { return base64.StdEncoding.EncodeToString(ztlog.LeafHash(leaf)) }

// rawMember returns the raw JSON of a top-level member of an object.
func rawMember(body []byte, name string) []byte {
	var m map[string]jsontext.Value
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	return []byte(m[name])
}

// codeBusy: a result for the decision is being committed right now.
const codeBusy = "busy"

func busy(idx uint64) *httperr.Error {
	return &httperr.Error{Code: codeBusy, Field: "statement",
		Message: fmt.Sprintf("a result for decision %d is being committed right now; post the same statement again in a moment", idx)}
}

// claim claims decision idx for the statement digest in Config.Claims (see
// Claims for the rule) and returns the attempt's owner name ("" without
// Claims), or the answer to give instead.
func (s *Service) claim(ctx context.Context, idx uint64, digest string, now time.Time) (string, int, *httperr.Error) {
	if s.cfg.Claims == nil {
		return "", 0, nil
	}
	unavailable := func(err error) (string, int, *httperr.Error) {
		return "", http.StatusServiceUnavailable, &httperr.Error{Code: "claim_unavailable",
			Message: fmt.Sprintf("cannot claim decision %d's result in the database the frontends share; nothing was committed, post the same statement again: %v", idx, err)}
	}
	owner := newOwner()
	c, err := s.cfg.Claims.Claim(ctx, idx, digest, owner, now)
	if err != nil {
		return unavailable(err)
	}
	switch {
	case c.Owner == owner:
		return owner, 0, nil
	case c.Statement != digest:
		return "", http.StatusConflict, &httperr.Error{Code: CodeResultExists, Field: "statement",
			Message: fmt.Sprintf("decision %d already has a result: statement %s, claimed through another frontend at %s; a decision gets one result",
				idx, c.Statement, c.At.UTC().Format(time.RFC3339))}
	case now.Sub(c.At) < s.cfg.ClaimLease:
		return "", http.StatusServiceUnavailable, busy(idx)
	}
	if _, ok := s.ResultOf(idx); ok {
		return "", http.StatusServiceUnavailable, busy(idx) // committed after all: the retry answers it
	}
	ok, err := s.cfg.Claims.TakeOver(ctx, idx, c.Owner, owner, now)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return "", http.StatusServiceUnavailable, busy(idx)
	}
	s.cfg.Logger.Warn("result claim taken over after its lease", "decision_index", idx, "previous_owner", c.Owner, "claimed_at", c.At.UTC().Format(time.RFC3339))
	return owner, 0, nil
}
