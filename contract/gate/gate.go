// Package gate is the decision path of the adapter contract v1: it
// authenticates the caller (SPIFFE), decodes the request strictly, checks
// the agent registry, asks the PDP, commits the decision to the log, and
// only then answers — with a signed receipt for an allow.
//
//	POST /v1/actions          the contract (api.ActionRequest -> api.ActionResponse)
//	POST /v1/actions/possible advisory: could the policy ever allow these
//	                          actions for the caller? Commits nothing.
//	POST /actions             the ZT JavaScript SDK's shape (ZeroTrustClient.decide)
//	POST /v1/agents           register or revoke an agent (administrators)
//	GET  /v1/agents/{td}/{path}  an agent's record (administrators, or the agent)
//	GET  /v1/receipts/jwks.json  receipt keys
//	GET  /v1/policy           the policy version in force
//	GET  /v1/openapi.json     the OpenAPI 3.1 document
//
// The invariant: no answer is an allow unless an allow entry was durably
// sequenced first. Unauthenticated requests (401) and malformed ones (4xx)
// decide nothing and commit nothing. Every decision about an authenticated,
// well-formed request — allow, policy deny, actor mismatch, unregistered or
// revoked agent, disallowed broker, policy failure — is committed before it
// is answered. When the commit itself fails (storage error, pushback,
// timeout, shutdown) or anything unexpected happens, the answer is 503 with
// the reason, never an allow.
package gate

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/proof"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/correlation"
	"github.com/zt-infra/ztlog/contract/gate/guardrail"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/reasons"
	"github.com/zt-infra/ztlog/contract/receipt"
	ztlog "github.com/zt-infra/ztlog/log"
)

// Defaults.
const (
	// DefaultDecisionTimeout bounds one decision: policy and commit.
	DefaultDecisionTimeout = 2 * time.Second
	// DefaultReceiptTTL is a receipt's lifetime.
	DefaultReceiptTTL = 5 * time.Minute
	// DefaultWitnessWait bounds how long a witnessed allow waits for a
	// checkpoint that includes it and meets the witness policy.
	DefaultWitnessWait = 10 * time.Second
	// DefaultCheckpointWait is how long POST /actions waits for a published
	// checkpoint covering the decision, to return it in audit.checkpoint.
	DefaultCheckpointWait = 2 * time.Second
)

// Reason codes the gate itself commits (policy reasons come from the PDP).
const (
	ReasonActorMismatch = reasons.ActorMismatch
	ReasonUnregistered  = reasons.Unregistered
	ReasonRevoked       = reasons.Revoked
	ReasonBroker        = reasons.Broker
	// ReasonAssuranceUnavailable: policy wants a witnessed allow and this
	// log has no witness policy.
	ReasonAssuranceUnavailable = "assurance.unavailable"
	// ReasonQuorumLost: policy wants a witnessed allow and the witness
	// quorum is lost; the message names the witnesses not cosigning.
	ReasonQuorumLost = "assurance.quorum_lost"
)

// Witnesses is what witnessed assurance needs of the log's witnessing
// (log/witnessing.Collector): the trust policy its checkpoints meet, and
// the quorum's state as of the witnesses' last answers.
type Witnesses interface {
	Policy() *trustpolicy.Policy
	Quorum() (met bool, missing []string)
}

// Config wires the gate. Log, Auth, PDP, Agents and Keys are required.
type Config struct {
	Log  *ztlog.Log
	Auth *identity.Authenticator
	// PDP decides; with Policy set it may be nil (Policy.PDP() is used).
	PDP *pdp.PDP
	// Policy, when set, keeps the policy in force (reloads, policy
	// entries) and GET /v1/policy reports its status.
	Policy *pdp.Manager
	Agents *agents.Registry
	Keys   *receipt.Keyset
	// Bundles verify the signer chains of agents' attestations; without
	// them every attestation is a committed deny (attestation.invalid).
	Bundles x509bundle.Source
	// Users verifies delegated user tokens (X-ZT-User-Token); without it a
	// request carrying one is a committed deny (user.unsupported).
	Users *identity.UserVerifier
	// Guardrails scans argument values sent in "args"; without it args are
	// only digested.
	Guardrails *guardrail.Scanner
	// Admins may call POST /v1/agents.
	Admins []spiffeid.ID
	// DefaultBroker is the receipt audience when a request names no broker
	// (e.g. POST /actions). Without one, such an allow carries no receipt.
	DefaultBroker string
	// DecisionTimeout, ReceiptTTL, CheckpointWait default to the Default*
	// constants.
	DecisionTimeout time.Duration
	ReceiptTTL      time.Duration
	CheckpointWait  time.Duration
	// Witnesses, when set, makes witnessed assurance possible: an allow
	// policy marks witnessed is answered only with a checkpoint that
	// includes it and meets Witnesses.Policy(), waited for at most
	// WitnessWait (default DefaultWitnessWait). Without it such an allow is
	// a committed deny (assurance.unavailable).
	Witnesses   Witnesses
	WitnessWait time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Gate is the decision path.
type Gate struct {
	cfg     Config
	admins  map[string]bool
	metrics *metrics
	// chains are the attestation signer chains that verified.
	chains *attest.ChainCache
}

// errReceipt is an allow committed whose receipt could not be signed.
var errReceipt = errors.New("no receipt")

// errWitness is a witnessed allow committed for which no checkpoint meeting
// the witness policy came in time.
var errWitness = errors.New("not witnessed")

// New checks cfg and builds the gate.
func New(cfg Config) (*Gate, error) {
	if cfg.PDP == nil && cfg.Policy != nil {
		cfg.PDP = cfg.Policy.PDP()
	}
	if cfg.Log == nil || cfg.Auth == nil || cfg.PDP == nil || cfg.Agents == nil || cfg.Keys == nil {
		return nil, errors.New("gate: Log, Auth, PDP, Agents and Keys are required")
	}
	if cfg.DecisionTimeout <= 0 {
		cfg.DecisionTimeout = DefaultDecisionTimeout
	}
	if cfg.ReceiptTTL == 0 {
		cfg.ReceiptTTL = DefaultReceiptTTL
	}
	if cfg.ReceiptTTL < time.Second {
		// A receipt's expiry is in whole seconds: under a second it could
		// equal its issue time, and every allow would be committed
		// without a receipt.
		return nil, fmt.Errorf("gate: receipt lifetime %s: at least 1s", cfg.ReceiptTTL)
	}
	if cfg.CheckpointWait <= 0 {
		cfg.CheckpointWait = DefaultCheckpointWait
	}
	if cfg.WitnessWait <= 0 {
		cfg.WitnessWait = DefaultWitnessWait
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultBroker != "" {
		if err := entry.ValidSPIFFEID(cfg.DefaultBroker); err != nil {
			return nil, fmt.Errorf("gate: default broker: %w", err)
		}
	}
	g := &Gate{cfg: cfg, admins: map[string]bool{}, metrics: newMetrics(cfg.Registerer), chains: attest.NewChainCache(0)}
	for _, a := range cfg.Admins {
		g.admins[a.String()] = true
	}
	return g, nil
}

// Register adds the gate's endpoints to r.
func (g *Gate) Register(r *mux.Router) {
	r.Handle("/v1/actions", g.guard(g.decideV1)).Methods(http.MethodPost)
	r.Handle("/v1/actions/possible", g.guard(g.possible)).Methods(http.MethodPost)
	r.Handle("/actions", g.guard(g.decideLegacy)).Methods(http.MethodPost)
	r.Handle("/v1/agents", g.guard(g.changeAgent)).Methods(http.MethodPost)
	r.Handle("/v1/agents", g.guard(g.getAgentByQuery)).Methods(http.MethodGet)
	r.Handle("/v1/agents/{td}/{path:.+}", g.guard(g.getAgent)).Methods(http.MethodGet)
	r.HandleFunc("/v1/receipts/jwks.json", g.jwks).Methods(http.MethodGet)
	r.HandleFunc("/v1/policy", g.policyStatus).Methods(http.MethodGet)
	r.HandleFunc("/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(api.OpenAPI)
	}).Methods(http.MethodGet)
}

// JWKS is the receipt key set published now.
func (g *Gate) JWKS() any { return g.cfg.Keys.JWKS(g.cfg.Now()) }

func (g *Gate) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	httperr.WriteJSON(w, http.StatusOK, g.JWKS())
}

// guard turns a panic into a 503 that allows nothing. Handlers write their
// response last, so a panic always happens before any answer is written.
func (g *Gate) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.cfg.Logger.Error("panic in the decision path", "panic", fmt.Sprint(v), "stack", string(debug.Stack()),
					"correlation_id", correlation.ID(r.Context()))
				g.metrics.failures.WithLabelValues("panic").Inc()
				unavailable(w, "internal_error", "internal error in the decision path; nothing was allowed — retry, and report the correlation id if it persists", 0)
			}
		}()
		h(w, r)
	})
}

// authenticate answers 401 itself and returns nil when the caller is not
// authenticated.
func (g *Gate) authenticate(w http.ResponseWriter, r *http.Request) *identity.Caller {
	c, err := g.cfg.Auth.Authenticate(r)
	if err != nil {
		g.metrics.refusals.WithLabelValues("unauthenticated").Inc()
		correlation.Annotate(r.Context(), slog.String("authn_error", err.Error()))
		w.Header().Set("WWW-Authenticate", `Bearer realm="ztlog", error="invalid_token"`)
		code := "unauthenticated"
		if errors.Is(err, identity.ErrInvalid) {
			code = "invalid_identity"
		}
		httperr.WriteError(w, http.StatusUnauthorized, &httperr.Error{Code: code, Field: "Authorization", Message: err.Error()})
		return nil
	}
	correlation.Annotate(r.Context(), slog.String("caller", c.ID.String()), slog.String("authn", string(c.Method)),
		slog.String("svid_serial", c.Serial), slog.String("svid_expires", c.Expires.UTC().Format(time.RFC3339)))
	return c
}

func badRequest(w http.ResponseWriter, status int, e *httperr.Error) {
	httperr.WriteError(w, status, e)
}

func unavailable(w http.ResponseWriter, code, msg string, retryAfter int) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: code, Message: msg})
}

// commitFailed answers a failed append: 503, the reason, never an allow.
func (g *Gate) commitFailed(w http.ResponseWriter, r *http.Request, effect entry.Effect, err error) {
	var code, msg string
	retry := 0
	switch {
	case errors.Is(err, ztlog.ErrPushback):
		code, msg, retry = "log_pushback", "the log has too many entries waiting to be sequenced; the decision was not committed, so nothing is allowed — retry later", 1
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		code, msg, retry = "commit_timeout", fmt.Sprintf("the decision was not committed within %s; nothing is allowed (it may still appear in the log later, without a receipt) — retry", g.cfg.DecisionTimeout), 1
	case errors.Is(err, ztlog.ErrClosed):
		code, msg, retry = "shutting_down", "the service is shutting down; the decision was not committed — retry on another instance", 1
	case errors.Is(err, ztlog.ErrStorage):
		code, msg, retry = "log_storage_error", "the log's storage failed; the decision was not committed, so nothing is allowed — retry later", 5
	case errors.Is(err, errReceipt):
		code, msg = "receipt_failed", err.Error()+"; nothing is allowed (the committed allow has no receipt, so no broker runs it) — retry"
	case errors.Is(err, errWitness):
		code, msg, retry = "witness_timeout", err.Error()+"; nothing is allowed (the committed allow has no receipt, so no broker runs it) — retry once the witnesses are back", 5
	default:
		code, msg = "commit_failed", "the decision could not be committed; nothing is allowed: "+err.Error()
	}
	g.metrics.failures.WithLabelValues(code).Inc()
	g.cfg.Logger.Warn("decision not committed", "error", err.Error(), "effect", string(effect), "correlation_id", correlation.ID(r.Context()))
	correlation.Annotate(r.Context(), slog.String("commit_error", err.Error()))
	unavailable(w, code, msg, retry)
}

// correlationID settles the request's correlation id from the header and
// the body; a bad or conflicting one is a 400.
func correlationID(w http.ResponseWriter, r *http.Request, fromBody string) (string, bool) {
	ctx := r.Context()
	if bad := correlation.Invalid(ctx); bad != "" {
		badRequest(w, http.StatusBadRequest, &httperr.Error{Code: api.CodeInvalidField, Field: correlation.Header,
			Message: fmt.Sprintf("%s must be 1 to %d printable ASCII characters without spaces", correlation.Header, correlation.MaxLen)})
		return "", false
	}
	id := correlation.ID(ctx)
	if fromBody != "" {
		if h := r.Header.Get(correlation.Header); h != "" && h != fromBody {
			badRequest(w, http.StatusBadRequest, &httperr.Error{Code: api.CodeInvalidField, Field: "correlation_id",
				Message: fmt.Sprintf("correlation_id %q differs from the %s header %q; send one or make them equal", fromBody, correlation.Header, h)})
			return "", false
		}
		correlation.SetID(ctx, w, fromBody)
		id = fromBody
	}
	return id, true
}

// request is a decision request after decoding, for both endpoints.
type request struct {
	userToken    string
	args         []byte
	claimedActor string
	action       string
	resource     string
	argsDigest   string
	broker       string
	attestation  *api.Envelope
	rawEnvelope  []byte
	// attestationChain is the request's signer chain; peerChain the
	// caller's mutual-TLS chain (DER, leaf first).
	attestationChain []string
	peerChain        [][]byte
	// manifest and capabilitiesDigest: the capability manifest sent.
	manifest           *capability.Manifest
	capabilitiesDigest string
	legacy             bool
}

// outcome is a committed decision.
type outcome struct {
	entry        *entry.Decision
	index        uint64
	leafHash     string
	receipt      string
	receiptUntil time.Time
	assurance    pdp.Assurance
	// checkpoint (a witnessed allow): the cosigned checkpoint including it.
	checkpoint []byte
	err        error // commit failed: answer 503
}

func (g *Gate) decideV1(w http.ResponseWriter, r *http.Request) {
	caller := g.authenticate(w, r)
	if caller == nil {
		return
	}
	req, body, ok := readRequest(g, w, r, api.DecodeActionRequest)
	if !ok {
		return
	}
	cid, ok := correlationID(w, r, req.CorrelationID)
	if !ok {
		return
	}
	in := request{claimedActor: req.Actor, action: req.Action, resource: req.Resource, argsDigest: req.ArgsDigest,
		broker: req.Broker, attestation: req.Attestation, args: req.Args, userToken: r.Header.Get(identity.UserTokenHeader)}
	if req.Attestation != nil {
		in.rawEnvelope = rawMember(body, "attestation")
		in.attestationChain = req.AttestationChain
		if r.TLS != nil {
			for _, c := range r.TLS.PeerCertificates {
				in.peerChain = append(in.peerChain, c.Raw)
			}
		}
	}
	in.manifest, in.capabilitiesDigest = req.Manifest, req.CapabilitiesDigest
	o := g.decide(r.Context(), caller, cid, in)
	if o.err != nil {
		g.commitFailed(w, r, o.entry.Effect, o.err)
		return
	}
	d := o.entry
	resp := api.ActionResponse{
		Decision: string(d.Effect), Reasons: apiReasons(d.Reasons), Actor: d.Actor, Action: d.Action, Resource: d.Resource,
		ActionDigest: d.ActionDigest, Policy: d.Policy,
		Log: g.logRef(o), CorrelationID: cid, Receipt: o.receipt,
	}
	resp.Findings, resp.User = d.Findings, d.User
	if o.receipt != "" {
		resp.ReceiptExpires = o.receiptUntil.UTC().Format(time.RFC3339)
	}
	status := http.StatusForbidden
	if d.Effect == entry.Allow {
		status = http.StatusOK
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, status, resp)
}

func (g *Gate) decideLegacy(w http.ResponseWriter, r *http.Request) {
	caller := g.authenticate(w, r)
	if caller == nil {
		return
	}
	req, _, ok := readRequest(g, w, r, api.DecodeLegacyActionRequest)
	if !ok {
		return
	}
	cid, ok := correlationID(w, r, "")
	if !ok {
		return
	}
	o := g.decide(r.Context(), caller, cid, request{claimedActor: req.Actor, action: req.Action, resource: req.Resource, legacy: true,
		userToken: r.Header.Get(identity.UserTokenHeader)})
	if o.err != nil {
		g.commitFailed(w, r, o.entry.Effect, o.err)
		return
	}
	d := o.entry
	reason := "allowed"
	if len(d.Reasons) > 0 {
		reason = d.Reasons[0].Message
	}
	audit := api.LegacyAudit{
		Timestamp: d.Time, CorrelationID: cid, Origin: g.cfg.Log.Origin(), Index: o.index, LeafHash: o.leafHash,
		ActionDigest: d.ActionDigest, PolicyHash: d.Policy.Hash, EntryURL: entryURL(o.index), Receipt: o.receipt,
	}
	if o.checkpoint != nil {
		// Witnessed: the cosigned checkpoint the allow waited for.
		audit.Checkpoint = string(o.checkpoint)
	} else {
		// The checkpoint is a convenience: the decision is already committed.
		wctx, cancel := context.WithTimeout(r.Context(), g.cfg.CheckpointWait)
		if cp, err := g.cfg.Log.Await(wctx, o.index); err == nil {
			audit.Checkpoint = string(cp.Note)
		}
		cancel()
	}
	actor := req.Actor // the name the caller used, as the JS SDK expects it back
	if actor == "" {
		actor = d.Actor
	}
	resp := api.LegacyActionResponse{OK: d.Effect == entry.Allow, Actor: actor, Action: d.Action, Resource: d.Resource,
		Decision: string(d.Effect), Reason: reason, Audit: audit}
	status := http.StatusForbidden
	if d.Effect == entry.Allow {
		status = http.StatusOK
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, status, resp)
}

// readRequest reads the body and decodes it strictly with decode; on any
// failure the refusal is written (and counted) and ok is false.
func readRequest[T any](g *Gate, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, *httperr.Error)) (req T, body []byte, ok bool) {
	body, e, status := api.ReadBody(w, r)
	if e != nil {
		g.refuse(w, r, status, e)
		return req, nil, false
	}
	if req, e = decode(body); e != nil {
		g.refuse(w, r, http.StatusBadRequest, e)
		return req, nil, false
	}
	return req, body, true
}

func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, status int, e *httperr.Error) {
	g.metrics.refusals.WithLabelValues(e.Code).Inc()
	correlation.Annotate(r.Context(), slog.String("refused", e.Code), slog.String("field", e.Field))
	badRequest(w, status, e)
}

// decide makes and commits the decision. It never returns an allow whose
// entry was not durably sequenced: o.err is set when the commit failed.
func (g *Gate) decide(reqCtx context.Context, caller *identity.Caller, cid string, req request) (o outcome) {
	start := time.Now()
	// Announce the entry this decision will append: under load the log's
	// group commit waits for announced entries to make bigger batches.
	appending := g.cfg.Log.Expect()
	defer appending()
	ctx, cancel := context.WithTimeout(reqCtx, g.cfg.DecisionTimeout)
	defer cancel()
	now := g.cfg.Now()
	actor := caller.ID.String()
	broker := req.broker
	if broker == "" {
		broker = g.cfg.DefaultBroker
	}
	d := &entry.Decision{
		Time: entry.FormatTime(now), CorrelationID: cid, Actor: actor,
		Authn:  entry.Authn{Method: string(caller.Method), Serial: serialText(caller.Serial)},
		Action: req.action, Resource: req.resource, ArgsDigest: req.argsDigest, Broker: broker,
		CapabilitiesDigest: req.capabilitiesDigest, Effect: entry.Deny,
	}
	if !caller.Expires.IsZero() {
		d.Authn.Expires = entry.FormatTime(caller.Expires.Truncate(time.Second))
	}
	o.entry = d
	digest, err := entry.ActionDigest(entry.Action{Actor: actor, Action: req.action, Resource: req.resource,
		ArgsDigest: req.argsDigest, Broker: broker, CapabilitiesDigest: req.capabilitiesDigest})
	if err != nil {
		o.err = fmt.Errorf("action digest: %w", err)
		return o
	}
	d.ActionDigest = digest
	if req.attestation != nil {
		d.Attestation = &entry.Attestation{Digest: entry.Digest(req.rawEnvelope)}
		if len(req.rawEnvelope) <= 16<<10 {
			d.Attestation.Envelope = req.rawEnvelope
		}
	}

	// Refusals of an authenticated caller: committed denies.
	var reasons []entry.Reason
	switch {
	case req.claimedActor == "" || req.claimedActor == actor:
	case req.legacy && g.isAliasOf(req.claimedActor, actor):
		// POST /actions: one of the caller's registered aliases (the
		// older control plane's actor names) stands for the caller.
		d.ActorAlias = req.claimedActor
	case req.legacy:
		d.ClaimedActor = req.claimedActor
		reasons = append(reasons, entry.Reason{Code: ReasonActorMismatch,
			Message: fmt.Sprintf("the body's actor %q is neither the authenticated SPIFFE ID %s nor one of its registered aliases", text.Cut(req.claimedActor, 200), actor)})
	default:
		d.ClaimedActor = req.claimedActor
		reasons = append(reasons, entry.Reason{Code: ReasonActorMismatch,
			Message: fmt.Sprintf("the body's actor %q is not the authenticated SPIFFE ID %s", text.Cut(req.claimedActor, 200), actor)})
	}
	rec, registered := g.cfg.Agents.Lookup(actor)
	status := agents.Unregistered
	switch {
	case !registered:
		reasons = append(reasons, entry.Reason{Code: ReasonUnregistered, Message: fmt.Sprintf("%s is not a registered agent", actor)})
	case rec.Status == agents.Revoked:
		status = agents.Revoked
		reasons = append(reasons, entry.Reason{Code: ReasonRevoked, Message: fmt.Sprintf("%s was revoked (log index %d)", actor, rec.Index)})
	default:
		status = agents.Registered
		// The broker the work would go to, named or the default: an
		// agent registered with brokers may hand work to those only.
		if broker != "" && len(rec.Brokers) > 0 && !contains(rec.Brokers, broker) {
			named := ""
			if req.broker == "" {
				named = " (the default broker: name one of the registered brokers in the request)"
			}
			reasons = append(reasons, entry.Reason{Code: ReasonBroker, Message: fmt.Sprintf("%s may not hand work to %s%s; registered brokers: %s", actor, broker, named, strings.Join(rec.Brokers, ", "))})
		}
	}

	// The delegated user: verified, or the reason it is not.
	var user *pdp.User
	if req.userToken != "" {
		switch {
		case g.cfg.Users == nil:
			reasons = append(reasons, entry.Reason{Code: "user.unsupported", Message: "a user token was sent but this service has no user token issuer configured"})
		default:
			u, err := g.cfg.Users.Verify(req.userToken, caller.ID, now)
			var ue *identity.UserError
			switch {
			case errors.As(err, &ue):
				reasons = append(reasons, entry.Reason{Code: ue.Code, Message: ue.Message})
			case err != nil:
				reasons = append(reasons, entry.Reason{Code: "user.invalid", Message: err.Error()})
			default:
				user = &pdp.User{Issuer: u.Issuer, Subject: clean(u.Subject, 512), Scopes: nonNil(u.Scopes)}
				d.User = &entry.User{Issuer: clean(u.Issuer, 512), Subject: user.Subject, Scopes: committableScopes(u.Scopes)}
			}
		}
	}
	// The runtime attestation: verified, or the reason it is not.
	var att *attestation
	if req.attestation != nil {
		var reason *entry.Reason
		if att, reason = g.checkAttestation(ctx, &req, caller, digest, broker, now); reason != nil {
			reasons = append(reasons, *reason)
		} else {
			d.Attestation.Chain, d.Attestation.Claims = att.chain, att.claims
		}
	}
	// Guardrails: findings over the argument values, never the values.
	findings := []pdp.Finding{}
	if req.args != nil && g.cfg.Guardrails != nil {
		fs, err := g.cfg.Guardrails.ScanJSON(req.args)
		if err != nil {
			reasons = append(reasons, entry.Reason{Code: "guardrail.error", Message: "the arguments could not be inspected: " + err.Error()})
		}
		for _, f := range fs {
			f.Rule, f.Arg = clean(f.Rule, 128), clean(f.Arg, 128)
			findings = append(findings, f)
			d.Findings = append(d.Findings, f)
		}
	}

	var version pdp.Version
	if len(reasons) > 0 {
		version = g.cfg.PDP.Current().Version()
		// Cut and cleaned like the policy's reasons: they quote what the
		// caller sent (a token's header, a body's actor, broker lists),
		// and a reason the entry cannot hold would turn a committed deny
		// into a 503 that leaves no record.
		d.Reasons = committable(reasons)
	} else {
		in := &pdp.Input{
			Actor: pdp.Actor{ID: actor, TrustDomain: caller.ID.TrustDomain().Name(), Path: caller.ID.Path(), Status: status,
				Owner: rec.Owner, Brokers: nonNil(rec.Brokers), Labels: nonNilMap(rec.Labels)},
			User:   user,
			Action: req.action, Resource: req.resource, ArgsDigest: req.argsDigest, Broker: broker,
			Findings: findings, Time: d.Time, CorrelationID: cid,
		}
		if att != nil {
			in.Attestation = att.input
		}
		dec, v, perr := g.cfg.PDP.Decide(ctx, in)
		version = v
		if perr != nil {
			g.metrics.failures.WithLabelValues("policy").Inc()
			g.cfg.Logger.Warn("policy failed; deny", "error", perr.Error(), "correlation_id", cid)
		}
		d.Reasons = committable(dec.Reasons)
		if dec.Allow && perr == nil {
			d.Effect = entry.Allow
			o.assurance = dec.Assurance
		}
		if att != nil && att.policyHash != "" && att.policyHash != v.Hash {
			d.Effect = entry.Deny
			d.Reasons = []entry.Reason{{Code: ReasonPolicyMismatch,
				Message: fmt.Sprintf("the agent attested that it expects policy %s; %s is in force", att.policyHash, v.Hash)}}
		}
	}
	d.Policy = version.Ref()
	if d.Effect == entry.Allow && o.assurance == pdp.Witnessed {
		// Fail closed before committing an allow that cannot be witnessed.
		if r := g.witnessable(d.Action); r != nil {
			d.Effect, d.Reasons, o.assurance = entry.Deny, []entry.Reason{*r}, ""
		}
	}

	var receiptID string
	var rkey *receipt.Key // the key the entry names is the key that signs
	if d.Effect == entry.Allow && broker != "" {
		receiptID = newReceiptID()
		o.receiptUntil = now.Add(g.cfg.ReceiptTTL).Truncate(time.Second)
		key := g.cfg.Keys.Current()
		rkey = key
		d.Receipt = &entry.ReceiptRef{ID: receiptID, KeyID: key.ID(), Audience: broker, Expires: entry.FormatTime(o.receiptUntil)}
	}
	leaf, err := entry.Marshal(d)
	if err != nil {
		o.err = fmt.Errorf("encode decision: %w", err)
		return o
	}
	appending()
	idx, err := g.cfg.Log.Append(ctx, leaf)
	if err != nil {
		o.err = err
		return o
	}
	o.index = idx
	o.leafHash = base64.StdEncoding.EncodeToString(ztlog.LeafHash(leaf))
	var proofText string
	if o.assurance == pdp.Witnessed {
		p, cp, err := g.witness(reqCtx, idx, ztlog.LeafHash(leaf))
		if err != nil {
			o.err = err
			return o
		}
		proofText, o.checkpoint = string(p), cp
	}
	if d.Receipt != nil {
		claims := receipt.Claims{
			Issuer: g.cfg.Log.Origin(), Subject: actor, Audience: broker,
			IssuedAt: now.Unix(), Expiry: o.receiptUntil.Unix(), ID: receiptID,
			ActionDigest: digest, Decision: string(entry.Allow), LogIndex: idx, LeafHash: o.leafHash,
			PolicyHash: d.Policy.Hash, CorrelationID: cid,
		}
		if proofText != "" {
			claims.Assurance, claims.TLogProof = receipt.Witnessed, proofText
		}
		tok, err := rkey.Sign(claims)
		if err != nil {
			// Committed but not honourable: the caller gets no allow.
			o.err = fmt.Errorf("%w: the allow is committed at index %d, but %w", errReceipt, idx, err)
			return o
		}
		o.receipt = tok
	}
	g.metrics.decisions.WithLabelValues(string(d.Effect), reasonClass(d)).Inc()
	g.metrics.latency.Observe(time.Since(start).Seconds())
	correlation.Annotate(ctx, slog.String("decision", string(d.Effect)), slog.Uint64("index", idx), slog.String("action", d.Action))
	return o
}

// isAliasOf reports whether alias is a registered alias of the agent id
// (held by it alone).
func (g *Gate) isAliasOf(alias, id string) bool {
	if entry.ValidAlias(alias) != nil {
		return false
	}
	holder, ok := g.cfg.Agents.AliasOwner(alias)
	return ok && holder == id
}

// witnessable returns why an allow of action cannot be witnessed now, or
// nil: there is a witness policy with a quorum, and as of the witnesses'
// last answers the quorum is met.
func (g *Gate) witnessable(action string) *entry.Reason {
	if g.cfg.Witnesses == nil || g.cfg.Witnesses.Policy() == nil || g.cfg.Witnesses.Policy().Quorum == nil {
		return &entry.Reason{Code: ReasonAssuranceUnavailable,
			Message: fmt.Sprintf("policy requires witnessed assurance for %s, and this log has no witness policy to meet", text.Cut(action, 200))}
	}
	if met, missing := g.cfg.Witnesses.Quorum(); !met {
		return &entry.Reason{Code: ReasonQuorumLost,
			Message: fmt.Sprintf("policy requires witnessed assurance for %s, and the witness quorum is lost (not cosigning: %s)", text.Cut(action, 200), strings.Join(missing, "; "))}
	}
	return nil
}

// witness waits (at most WitnessWait) for a published checkpoint that
// includes index and verifies under the witness policy, and returns the
// entry's tlog-proof against it and the checkpoint.
func (g *Gate) witness(ctx context.Context, index uint64, leafHash []byte) (tlogProof, checkpoint []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.WitnessWait)
	defer cancel()
	fail := func(format string, args ...any) ([]byte, []byte, error) {
		why := fmt.Sprintf(format, args...)
		if _, missing := g.cfg.Witnesses.Quorum(); len(missing) > 0 {
			why += " (not cosigning: " + strings.Join(missing, "; ") + ")"
		}
		return nil, nil, fmt.Errorf("%w: the allow is committed at index %d, but %s", errWitness, index, why)
	}
	cp, err := g.cfg.Log.Await(ctx, index)
	if err != nil {
		return fail("no checkpoint including it was published within %s: %v", g.cfg.WitnessWait, err)
	}
	vcp, err := g.cfg.Witnesses.Policy().VerifyCheckpoint(cp.Note, trustpolicy.VerifyOptions{Now: g.cfg.Now()})
	if err != nil {
		return fail("the checkpoint of size %d does not meet the witness policy: %v", cp.Size, err)
	}
	hashes, err := g.cfg.Log.InclusionProof(ctx, index, vcp.Size)
	if err != nil {
		return fail("its inclusion proof in the checkpoint of size %d: %v", vcp.Size, err)
	}
	if err := proof.Inclusion(vcp, index, leafHash, hashes); err != nil {
		return fail("its inclusion proof does not verify: %v", err)
	}
	return tlogproof.Format(&tlogproof.Proof{Index: index, Hashes: hashes, Checkpoint: cp.Note}), cp.Note, nil
}

func (g *Gate) logRef(o outcome) api.LogRef {
	return api.LogRef{Origin: g.cfg.Log.Origin(), Index: o.index, LeafHash: o.leafHash, EntryURL: entryURL(o.index)}
}

func entryURL(i uint64) string { return "/v1/entries/" + strconv.FormatUint(i, 10) }

func reasonClass(d *entry.Decision) string {
	if len(d.Reasons) == 0 {
		return "none"
	}
	c := d.Reasons[0].Code
	if i := strings.IndexByte(c, '.'); i > 0 {
		return c[:i]
	}
	return c
}

func apiReasons(rs []entry.Reason) []api.Reason {
	// A copy, and never null on the wire.
	return append(make([]api.Reason, 0, len(rs)), rs...)
}

func newReceiptID() string {
	var b [16]byte
	rand.Read(b[:])
	return "r-" + base64.RawURLEncoding.EncodeToString(b[:])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// committable returns reasons that the entry format accepts
// (reasons.Committable).
func committable(rs []entry.Reason) []entry.Reason { return reasons.Committable(rs) }

// clean replaces the characters free text may not hold (reasons.Clean)
// and cuts s to at most max bytes on a character boundary.
func clean(s string, max int) string { return reasons.Clean(s, max) }

// committableScopes keeps at most 32 scopes, each cut to size.
func committableScopes(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if len(out) == 32 {
			break
		}
		if c := clean(s, 128); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// serialText is the SVID serial (hex) or JWT id as committed: a JWT id that
// is long or not printable is committed as its digest.
func serialText(s string) string {
	if len(s) <= 128 && clean(s, 128) == s {
		return s
	}
	return entry.Digest([]byte(s))
}
