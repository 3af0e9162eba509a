// Package broker is the execution broker: it takes work handed over with a
// receipt, verifies the receipt offline, runs the work in a sandbox under
// its capability manifest, signs a broker-result statement with its own
// X.509-SVID and reports it to POST /v1/results. The handoff, the work
// request of `zt broker` and the refusal codes are specified in broker.md
// next to this file.
//
// Nothing runs unless, in this order: the capability manifest parses; the
// receipt verifies against the issuer's JWKS (signature, key, issuer,
// audience = this broker's SPIFFE ID, not expired); the caller, when known,
// is the receipt's subject; the action digest of the work handed (actor,
// action, resource, digest of the command line, this broker, manifest
// digest) is the receipt's; in strict mode, the decision entry is proven
// included under a checkpoint that satisfies the trust policy; and the
// receipt's one-time id has never been claimed (recorded durably before
// anything is spawned). Each failure is a *Refused with a code and reason.
package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/zt-infra/ztlog/internal/jcs"
	"github.com/zt-infra/ztlog/internal/text"
	"github.com/zt-infra/ztlog/internal/trustpolicy"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker/sandbox"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
)

// Refusal codes (Refused.Code).
const (
	// RefuseCapabilities: no manifest, or it does not parse or validate.
	RefuseCapabilities = "capabilities_invalid"
	// RefuseReceipt: the receipt is malformed, forged (signature), or
	// signed by a key the issuer does not publish.
	RefuseReceipt = "receipt_invalid"
	// RefuseExpired: the receipt expired (or is not yet valid).
	RefuseExpired = "receipt_expired"
	// RefuseAudience: the receipt is for another broker.
	RefuseAudience = "receipt_not_for_this_broker"
	// RefuseIssuer: the receipt was issued by another log.
	RefuseIssuer = "receipt_wrong_issuer"
	// RefuseCaller: the agent handing the work is not the receipt's actor.
	RefuseCaller = "caller_not_actor"
	// RefuseWork: the work handed is not the action the receipt approves.
	RefuseWork = "work_mismatch"
	// RefuseUnproven: strict mode could not prove the decision is in the
	// log under a trusted checkpoint.
	RefuseUnproven = "decision_not_proven"
	// RefuseReplayed: the receipt's one-time id was honoured before.
	RefuseReplayed = "receipt_replayed"
	// RefuseInternal: the broker could not check (keys unreachable,
	// replay file unwritable); nothing ran.
	RefuseInternal = "broker_unavailable"
)

// Refused is work refused before anything was spawned.
type Refused struct {
	Code    string
	Message string
}

func (r *Refused) Error() string { return "broker refused the work (" + r.Code + "): " + r.Message }

func refused(code, format string, a ...any) *Refused {
	return &Refused{Code: code, Message: fmt.Sprintf(format, a...)}
}

// AsRefused reports whether err is a Refused and returns it.
func AsRefused(err error) (*Refused, bool) {
	var r *Refused
	ok := errors.As(err, &r)
	return r, ok
}

// Work is what an agent hands the broker.
type Work struct {
	// Receipt is the compact JWS from the decision.
	Receipt string
	// Action and Resource as decided.
	Action, Resource string
	// Argv is the command line; its digest (ArgsDigest) is the action's
	// args digest.
	Argv []string
	// Capabilities is the capability manifest (JSON) the work runs under.
	Capabilities []byte
	// Caller is the authenticated SPIFFE ID of the agent handing the work,
	// when the broker knows it (`zt broker` does; an in-process broker is
	// the agent). It must be the receipt's subject.
	Caller string
	// Stdin, Stdout, Stderr of the command (nil: empty, discarded).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// CommandArgs is the args object of a command line, {"argv":[...]}: what
// an agent sends as args (for guardrail inspection) or digests into
// args_digest.
func CommandArgs(argv []string) map[string]any {
	a := make([]any, len(argv))
	for i, s := range argv {
		a[i] = s
	}
	return map[string]any{"argv": a}
}

// ArgsDigest is the args digest of a command line: the JCS digest of
// CommandArgs(argv), as api.ArgsDigest computes it for args sent inline.
func ArgsDigest(argv []string) (string, error) {
	b, err := jsonMarshal(CommandArgs(argv))
	if err != nil {
		return "", err
	}
	return api.ArgsDigest(b)
}

// Config wires a broker. SVID, Issuer, Keys and Replay are required;
// Runner too for work (Handle), not for calls it performs itself (Perform).
type Config struct {
	// SVID is the broker's own identity: the receipt audience it accepts,
	// and the key it signs results with.
	SVID x509svid.Source
	// Issuer is the log origin receipts must come from.
	Issuer string
	// Keys gives the issuer's receipt JWKS.
	Keys receipt.KeySource
	// Replay remembers honoured receipt ids: a *Replay file for a broker
	// handed receipts by others (zt broker, zt run's local broker), an
	// *InProcessReplay only for a broker that honours nothing but the
	// receipts it obtained itself in process (the MCP gateway; broker.md).
	Replay ReceiptIDs
	// Runner runs the work.
	Runner *sandbox.Runner
	// Reporter posts results (nil: results are signed but not posted).
	Reporter Reporter
	// Strict, when set, requires the decision's inclusion proof.
	Strict *Strict
	// Witnesses is the trust policy a witnessed receipt's checkpoint must
	// meet (contract/receipt/receipt.md, "Witnessed receipts"). Default:
	// Strict's policy. Without one a witnessed receipt is refused.
	Witnesses *trustpolicy.Policy
	// Leeway is the clock skew tolerated on receipt times (default 5s).
	Leeway time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Broker handles work. Safe for concurrent use.
type Broker struct {
	cfg Config
}

// New checks cfg.
func New(cfg Config) (*Broker, error) {
	if cfg.SVID == nil || cfg.Issuer == "" || cfg.Keys == nil || cfg.Replay == nil {
		return nil, errors.New("broker: SVID, Issuer, Keys and Replay are required")
	}
	if _, err := cfg.SVID.GetX509SVID(); err != nil {
		return nil, fmt.Errorf("broker: own SVID: %w", err)
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.Witnesses == nil && cfg.Strict != nil {
		cfg.Witnesses = cfg.Strict.Policy
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Broker{cfg: cfg}, nil
}

// ID is the broker's SPIFFE ID (the receipt audience it accepts).
func (b *Broker) ID() spiffeid.ID {
	svid, err := b.cfg.SVID.GetX509SVID()
	if err != nil {
		return spiffeid.ID{}
	}
	return svid.ID
}

// Report is what became of accepted work.
type Report struct {
	// Claims of the receipt honoured.
	Claims *receipt.Claims
	// ActionDigest of the work.
	ActionDigest string
	// Outcome of the run (Outcome.Outcome(): ok, failed, error).
	Outcome *sandbox.Outcome
	// Predicate and Statement: the signed broker result.
	Predicate *attest.BrokerResult
	Statement *attest.Signed
	// Result is the committed result entry (nil if it was not reported,
	// or is Queued).
	Result *api.ResultResponse
	// Queued: the Reporter (a Courier) kept the signed result durably in
	// its outbox and delivers it in the background.
	Queued bool
	// ReportError says why the result was not committed.
	ReportError error
}

// Check verifies work without running it or claiming its receipt: every
// check of Handle but the one-time id. It returns the receipt's claims, the
// action digest and the parsed manifest.
func (b *Broker) Check(ctx context.Context, w *Work) (*receipt.Claims, string, *capability.Manifest, error) {
	self := b.ID()
	if self.IsZero() {
		return nil, "", nil, refused(RefuseInternal, "the broker has no SVID")
	}
	if len(w.Capabilities) == 0 {
		return nil, "", nil, refused(RefuseCapabilities, "no capability manifest was handed with the work; the broker runs nothing without one")
	}
	m, err := capability.Parse(w.Capabilities)
	if err != nil {
		return nil, "", nil, refused(RefuseCapabilities, "%v", err)
	}
	caps, err := m.Digest()
	if err != nil {
		return nil, "", nil, refused(RefuseCapabilities, "%v", err)
	}
	if len(w.Argv) == 0 {
		return nil, "", nil, refused(RefuseWork, "no command")
	}
	argsDigest, err := ArgsDigest(w.Argv)
	if err != nil {
		return nil, "", nil, refused(RefuseWork, "command line: %v", err)
	}
	c, err := b.verifyReceipt(ctx, w.Receipt, self.String())
	if err != nil {
		return nil, "", nil, err
	}
	if w.Caller != "" && w.Caller != c.Subject {
		return nil, "", nil, refused(RefuseCaller, "the receipt was issued to %s, the work was handed by %s", c.Subject, w.Caller)
	}
	digest, err := entry.ActionDigest(entry.Action{Actor: c.Subject, Action: w.Action, Resource: w.Resource,
		ArgsDigest: argsDigest, Broker: self.String(), CapabilitiesDigest: caps})
	if err != nil {
		return nil, "", nil, refused(RefuseWork, "%v", err)
	}
	if digest != c.ActionDigest {
		return nil, "", nil, refused(RefuseWork, "the work handed (action %q on %q, command %q, manifest %s) has action digest %s; the receipt approves %s",
			text.Cut(w.Action, 80), text.Cut(w.Resource, 80), text.Cut(fmt.Sprint(w.Argv), 120), caps, digest, c.ActionDigest)
	}
	if b.cfg.Strict != nil {
		if err := b.cfg.Strict.prove(ctx, c, b.cfg.Now()); err != nil {
			return nil, "", nil, refused(RefuseUnproven, "%v", err)
		}
	}
	return c, digest, m, nil
}

func (b *Broker) verifyReceipt(ctx context.Context, token, self string) (*receipt.Claims, error) {
	keys, err := b.cfg.Keys.Keys(ctx, false)
	if err != nil {
		return nil, refused(RefuseInternal, "receipt keys: %v", err)
	}
	want := receipt.Expect{Issuer: b.cfg.Issuer, Audience: self, Now: b.cfg.Now(), Leeway: b.cfg.Leeway, Witnesses: b.cfg.Witnesses}
	c, err := receipt.Verify(token, keys, want)
	if errors.Is(err, receipt.ErrUnknownKey) {
		// The issuer may have rotated: fetch the JWKS again, once.
		if keys, kerr := b.cfg.Keys.Keys(ctx, true); kerr == nil {
			c, err = receipt.Verify(token, keys, want)
		}
	}
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, receipt.ErrExpired):
		return nil, refused(RefuseExpired, "%v", err)
	case errors.Is(err, receipt.ErrUnwitnessed):
		if b.cfg.Witnesses == nil {
			return nil, refused(RefuseUnproven, "%v (give the broker the log's trust policy to check witnessed receipts)", err)
		}
		return nil, refused(RefuseUnproven, "%v", err)
	case errors.Is(err, receipt.ErrMismatch):
		if r, perr := receipt.Parse(token); perr == nil {
			if r.Claims.Audience != self {
				return nil, refused(RefuseAudience, "the receipt is for %s; this broker is %s", r.Claims.Audience, self)
			}
			if r.Claims.Issuer != b.cfg.Issuer {
				return nil, refused(RefuseIssuer, "the receipt was issued by %q; this broker trusts %q", r.Claims.Issuer, b.cfg.Issuer)
			}
		}
		return nil, refused(RefuseReceipt, "%v", err)
	}
	return nil, refused(RefuseReceipt, "%v", err)
}

// Handle verifies the work (Check), claims the receipt's one-time id, runs
// the work, signs the result and reports it. A *Refused error means
// nothing was spawned and nothing reported. Otherwise the Report says how
// the work ended and whether its result was committed.
func (b *Broker) Handle(ctx context.Context, w *Work) (*Report, error) {
	if b.cfg.Runner == nil {
		return nil, refused(RefuseInternal, "this broker has no sandbox runner; it runs no commands")
	}
	c, digest, m, err := b.Check(ctx, w)
	if err != nil {
		b.cfg.Logger.Warn("work refused", "error", err.Error(), "action", w.Action)
		return nil, err
	}
	if err := b.claim(c, "work"); err != nil {
		return nil, err
	}
	spec := &sandbox.Spec{Manifest: m, Argv: w.Argv, Stdin: w.Stdin, Stdout: w.Stdout, Stderr: w.Stderr}
	o, err := b.cfg.Runner.Run(ctx, spec)
	if ref, ok := sandbox.IsRefusal(err); ok {
		o = b.cfg.Runner.Refused(spec, ref, b.cfg.Now())
	} else if err != nil {
		o = b.cfg.Runner.Refused(spec, &sandbox.Refusal{Class: attest.ErrorSpawn, Message: err.Error()}, b.cfg.Now())
	}
	rep := &Report{Claims: c, ActionDigest: digest, Outcome: o}
	rep.Predicate = &attest.BrokerResult{
		Decision:  attest.DecisionRef{Index: c.LogIndex, LeafHash: c.LeafHash},
		ReceiptID: c.ID, CorrelationID: c.CorrelationID,
		Outcome: o.Outcome(), Exit: o.Exit, Error: o.Error,
		StartedAt: attest.FormatTime(o.StartedAt), FinishedAt: attest.FormatTime(o.FinishedAt),
		Outputs: attest.Outputs{Stdout: o.Stdout, Stderr: o.Stderr, Files: o.Files},
		Sandbox: o.Sandbox,
	}
	b.cfg.Logger.Info("work ran", "outcome", rep.Predicate.Outcome, "log_index", c.LogIndex, "jti", c.ID,
		"sandbox", o.Sandbox.Kind, "correlation_id", c.CorrelationID)
	b.signAndReport(ctx, rep)
	return rep, nil
}

// claim records the receipt's one-time id; what names the refused thing
// in the log line.
func (b *Broker) claim(c *receipt.Claims, what string) error {
	if err := b.cfg.Replay.Claim(c.ID, time.Unix(c.Expiry, 0)); err != nil {
		if errors.Is(err, ErrReplayed) {
			b.cfg.Logger.Warn(what+" refused: receipt replayed", "jti", c.ID, "log_index", c.LogIndex)
			return refused(RefuseReplayed, "%v", err)
		}
		return refused(RefuseInternal, "recording the receipt id: %v", err)
	}
	return nil
}

// signAndReport signs rep.Predicate about rep.ActionDigest with the
// broker's SVID and commits it through the Reporter, recording in rep what
// became of it. Handle and Perform share it: one result path.
func (b *Broker) signAndReport(ctx context.Context, rep *Report) {
	c := rep.Claims
	svid, err := b.cfg.SVID.GetX509SVID()
	if err == nil {
		rep.Statement, err = attest.SignBrokerResult(ctx, svid, rep.ActionDigest, rep.Predicate)
	}
	if err != nil {
		rep.ReportError = fmt.Errorf("signing the result: %w", err)
		b.cfg.Logger.Error("result not signed", "error", err.Error(), "log_index", c.LogIndex)
		return
	}
	if b.cfg.Reporter != nil {
		rep.Result, rep.ReportError = b.cfg.Reporter.Report(ctx, rep.Statement)
		if errors.Is(rep.ReportError, ErrQueued) {
			rep.Queued, rep.ReportError = true, nil
		}
		if rep.ReportError != nil {
			b.cfg.Logger.Error("result not committed", "error", rep.ReportError.Error(), "log_index", c.LogIndex)
		}
	}
}

func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return jcs.Canonicalize(buf.Bytes())
}
