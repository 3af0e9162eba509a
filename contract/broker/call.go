package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/text"
)

// Call is an allowed action the broker performs itself instead of running
// a command in a sandbox: a tool call an MCP gateway forwards to the MCP
// server (contract/gateway/mcp). There is no capability manifest: the
// action digest is computed with an empty capabilities digest, as the agent
// asked.
type Call struct {
	// Receipt is the compact JWS from the decision.
	Receipt string
	// Action, Resource and ArgsDigest as decided.
	Action, Resource, ArgsDigest string
	// Caller is the SPIFFE ID of the agent the call is made for; it must
	// be the receipt's subject.
	Caller string
	// Sandbox is the containment the result records: for a forwarded call,
	// Kind "none" and the rules that did apply (attest.SandboxApplied).
	Sandbox attest.SandboxApplied
}

// CallOutcome is how a performed call ended, as the broker-result predicate
// records it: Outcome ok (Exit.Status 0) or failed (another status),
// digests and sizes of what came back, and when it started and finished.
type CallOutcome struct {
	Outcome               string
	Exit                  attest.Exit
	Stdout, Stderr        attest.Output
	StartedAt, FinishedAt time.Time
}

// Perform verifies the call as Check verifies work — the receipt against
// the issuer's JWKS (issuer, audience = this broker, expiry), the caller
// is the receipt's subject, the call's action digest is the receipt's, and
// in strict mode the decision's inclusion proof — claims the receipt's
// one-time id, runs fn, then signs the result and reports it exactly as
// Handle does. A *Refused error means fn did not run and nothing was
// reported.
func (b *Broker) Perform(ctx context.Context, call *Call, fn func(ctx context.Context) CallOutcome) (*Report, error) {
	c, digest, err := b.checkCall(ctx, call)
	if err != nil {
		b.cfg.Logger.Warn("call refused", "error", err.Error(), "action", call.Action)
		return nil, err
	}
	if err := b.claim(c, "call"); err != nil {
		return nil, err
	}
	o := fn(ctx)
	exit := o.Exit
	rep := &Report{Claims: c, ActionDigest: digest}
	rep.Predicate = &attest.BrokerResult{
		Decision:  attest.DecisionRef{Index: c.LogIndex, LeafHash: c.LeafHash},
		ReceiptID: c.ID, CorrelationID: c.CorrelationID,
		Outcome: o.Outcome, Exit: &exit,
		StartedAt: attest.FormatTime(o.StartedAt), FinishedAt: attest.FormatTime(o.FinishedAt),
		Outputs: attest.Outputs{Stdout: o.Stdout, Stderr: o.Stderr},
		Sandbox: call.Sandbox,
	}
	if err := rep.Predicate.Validate(); err != nil {
		// A caller's bug, not the call's: say so rather than sign it.
		rep.ReportError = fmt.Errorf("the result is not a valid broker result: %w", err)
		return rep, nil
	}
	b.cfg.Logger.Info("call performed", "outcome", o.Outcome, "log_index", c.LogIndex, "jti", c.ID, "correlation_id", c.CorrelationID)
	b.signAndReport(ctx, rep)
	return rep, nil
}

// checkCall is Check for a Call.
func (b *Broker) checkCall(ctx context.Context, call *Call) (*receipt.Claims, string, error) {
	self := b.ID()
	if self.IsZero() {
		return nil, "", refused(RefuseInternal, "the broker has no SVID")
	}
	c, err := b.verifyReceipt(ctx, call.Receipt, self.String())
	if err != nil {
		return nil, "", err
	}
	if call.Caller != "" && call.Caller != c.Subject {
		return nil, "", refused(RefuseCaller, "the receipt was issued to %s, the call is made for %s", c.Subject, call.Caller)
	}
	digest, err := entry.ActionDigest(entry.Action{Actor: c.Subject, Action: call.Action, Resource: call.Resource,
		ArgsDigest: call.ArgsDigest, Broker: self.String()})
	if err != nil {
		return nil, "", refused(RefuseWork, "%v", err)
	}
	if digest != c.ActionDigest {
		return nil, "", refused(RefuseWork, "the call (action %q on %q, arguments %s) has action digest %s; the receipt approves %s",
			text.Cut(call.Action, 80), text.Cut(call.Resource, 80), call.ArgsDigest, digest, c.ActionDigest)
	}
	if b.cfg.Strict != nil {
		if err := b.cfg.Strict.prove(ctx, c, b.cfg.Now()); err != nil {
			return nil, "", refused(RefuseUnproven, "%v", err)
		}
	}
	return c, digest, nil
}
