// Package replay re-decides committed decisions: it rebuilds the policy
// input a decision was made on from the log (the decision entry and the
// agent registry as the log's earlier agent entries describe it), compiles
// the policy version the decision names from its stored source (checked
// against the source digest its policy entry commits), evaluates it with
// the same engine, and compares effect and reasons with what was
// committed.
//
// Argument values were never committed, so a replay cannot scan them
// again: it uses what the policy saw of them, the arguments digest and the
// guardrail findings, as committed. The same holds for a delegated user's
// token and an agent's attestation: the verified user and attestation
// claims the decision committed are what the policy saw; the token and the
// attestation's signature are not re-verified here (zt-audit verifies
// committed attestations against SPIFFE roots).
//
// Two inputs are as the log has them, which may differ from what the
// policy saw in rare cases, reported as differences rather than hidden: a
// delegated user's scopes are committed cut to 32 of at most 128 bytes
// each, and the agent registry is the one the agent entries before the
// decision describe (a registration whose commit raced the decision can
// be sequenced on either side of it).
//
// Replay does not verify the log either (checkpoint signatures, inclusion,
// completeness): that is zt-audit's. It answers one question: does the
// committed policy, given the committed input, decide what the log says it
// decided?
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/reasons"
	"github.com/zt-infra/ztlog/contract/policysource"
)

// Verdicts of a replay.
const (
	// Same: the replayed effect and reasons are the committed ones.
	Same = "same"
	// Different: the replay decided otherwise; Differences says how.
	Different = "different"
	// Gate: the gate refused before the policy was asked (identity,
	// registration, broker, user token, attestation, guardrail error); the
	// refusals replay can re-derive (identity, registration, broker) agree
	// with the committed ones, and the policy was not evaluated.
	Gate = "gate"
	// Unreplayable: the policy the decision names could not be had or
	// did not match its policy entry (ErrPolicy); Error says why. Only Run
	// with KeepGoing reports it; otherwise it is an error.
	Unreplayable = "unreplayable"
)

// Fetch returns the stored source document of the policy version with
// hash and source digest (contract/policysource), e.g. from GET
// /v1/policies/{hash}?source_digest=D.
type Fetch func(ctx context.Context, hash, sourceDigest string) ([]byte, error)

// Replayer follows a log in index order (Observe) and replays the
// decisions it is asked to (Decision). Not safe for concurrent use.
type Replayer struct {
	// Fetch gets stored policy sources; ignored for a version whose
	// source digest Local matches.
	Fetch Fetch
	// Local, when set, is the source an auditor reviewed (e.g. a
	// directory): it is used instead of fetching, and only for decisions
	// whose policy entry commits its digest; another digest is refused.
	Local *policysource.Source
	// Timeout bounds one evaluation. Default 5s.
	Timeout time.Duration
	// KeepGoing makes Run report a decision whose policy cannot be
	// replayed (ErrPolicy: e.g. a policy entry from before sources were
	// stored) as Unreplayable and go on, instead of stopping.
	KeepGoing bool

	agents   *agents.Registry
	policies map[string]PolicyRef   // by policy hash: the latest policy entry seen
	compiled map[string]compiledRef // by source digest
}

// PolicyRef is a policy entry: where a version came into force.
type PolicyRef struct {
	Index        uint64 `json:"index"`
	Hash         string `json:"hash"`
	Engine       string `json:"engine"`
	Revision     string `json:"revision,omitempty"`
	SourceDigest string `json:"source_digest"`
}

type compiledRef struct {
	p   pdp.Policy
	err error
}

// New returns a replayer with an empty registry: feed it the log from
// index 0.
func New(fetch Fetch, local *policysource.Source) *Replayer {
	return &Replayer{Fetch: fetch, Local: local, agents: agents.New(nil),
		policies: map[string]PolicyRef{}, compiled: map[string]compiledRef{}}
}

// Observe applies the entry at index to the state decisions are replayed
// on (agent and policy entries). Entries must come in index order; every
// entry before a decision must be observed before it is replayed.
func (r *Replayer) Observe(index uint64, leaf []byte, e entry.Entry) error {
	switch e := e.(type) {
	case *entry.Agent:
		return r.agents.Replay(index, leaf)
	case *entry.Policy:
		r.policies[e.Hash] = PolicyRef{Index: index, Hash: e.Hash, Engine: e.Engine, Revision: e.Revision, SourceDigest: e.SourceDigest}
	}
	return nil
}

// Decided is an effect and its reasons.
type Decided struct {
	Effect  entry.Effect   `json:"effect"`
	Reasons []entry.Reason `json:"reasons"`
}

// Result is one decision replayed.
type Result struct {
	Index       uint64     `json:"index"`
	Verdict     string     `json:"verdict"`
	Committed   Decided    `json:"committed"`
	Replayed    *Decided   `json:"replayed,omitempty"`
	Differences []string   `json:"differences,omitempty"`
	Policy      *PolicyRef `json:"policy,omitempty"`
	// Input is the policy input rebuilt from the log (nil when the gate
	// refused before the policy was asked).
	Input *pdp.Input `json:"input,omitempty"`
	// Saw says what of the arguments and credentials the policy saw.
	Saw string `json:"saw"`
	// Error is why an Unreplayable decision could not be replayed.
	Error string `json:"error,omitempty"`
}

// Saw is the standing note of every result.
const Saw = "argument values were never committed: the policy is replayed on what it saw of them, the arguments digest and the guardrail findings as committed; a user token and an attestation are replayed as their committed verified claims"

// ErrPolicy is wrapped by errors about the policy a decision names: no
// policy entry, a source that does not match the committed digest, a
// source that does not compile to the committed hash. A replay that
// fails so proves nothing either way; the command treats it as a failed
// verification.
var ErrPolicy = errors.New("replay: policy")

// Decision replays the decision at index (observed entries must cover
// every index before it).
func (r *Replayer) Decision(ctx context.Context, index uint64, d *entry.Decision) (*Result, error) {
	res := &Result{Index: index, Committed: Decided{Effect: d.Effect, Reasons: d.Reasons}, Saw: Saw}
	rec, registered := r.agents.Lookup(d.Actor)
	derived := r.gateRefusals(d, rec, registered)
	if committedByGate(d) || len(derived) > 0 {
		res.Verdict = Gate
		if d.Effect == entry.Allow {
			res.Differences = append(res.Differences, "an allow, yet the gate's own refusal applies: "+strings.Join(derived, ", "))
		}
		for _, code := range derived {
			if !hasCode(d.Reasons, code) {
				res.Differences = append(res.Differences, fmt.Sprintf("the log says the gate should have refused with %s; the committed reasons do not", code))
			}
		}
		for _, code := range []string{reasons.ActorMismatch, reasons.Unregistered, reasons.Revoked, reasons.Broker} {
			if hasCode(d.Reasons, code) && !slices.Contains(derived, code) {
				res.Differences = append(res.Differences, fmt.Sprintf("committed refusal %s does not follow from the log", code))
			}
		}
		if len(res.Differences) > 0 {
			res.Verdict = Different
		}
		return res, nil
	}
	ref, ok := r.policies[d.Policy.Hash]
	if !ok {
		return nil, fmt.Errorf("%w: decision %d names policy %s, and no policy entry before it commits that hash", ErrPolicy, index, d.Policy.Hash)
	}
	res.Policy = &ref
	p, err := r.policy(ctx, ref)
	if err != nil {
		return nil, err
	}
	in, err := Input(d, rec, registered)
	if err != nil {
		return nil, err
	}
	res.Input = in
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	dec, _, _ := pdp.NewPDP(p, timeout).Decide(ctx, in)
	got := Decided{Effect: entry.Deny, Reasons: reasons.Committable(dec.Reasons)}
	if dec.Allow {
		got.Effect = entry.Allow
	}
	if a := d.Attestation; a != nil && a.Claims["policyHash"] != "" && a.Claims["policyHash"] != ref.Hash {
		got = Decided{Effect: entry.Deny, Reasons: []entry.Reason{{Code: reasons.PolicyMismatch,
			Message: fmt.Sprintf("the agent attested that it expects policy %s; %s is in force", a.Claims["policyHash"], ref.Hash)}}}
	}
	res.Replayed = &got
	res.Differences = compare(res.Committed, got)
	res.Verdict = Same
	if len(res.Differences) > 0 {
		res.Verdict = Different
	}
	return res, nil
}

// policy compiles (once) the source of the version ref names, refusing a
// source whose digest or hash is not the committed one.
func (r *Replayer) policy(ctx context.Context, ref PolicyRef) (pdp.Policy, error) {
	if c, ok := r.compiled[ref.SourceDigest]; ok {
		return c.p, c.err
	}
	p, err := r.compile(ctx, ref)
	r.compiled[ref.SourceDigest] = compiledRef{p, err}
	return p, err
}

func (r *Replayer) compile(ctx context.Context, ref PolicyRef) (pdp.Policy, error) {
	var src *policysource.Source
	origin := "the stored source of policy " + ref.Hash
	switch {
	case r.Local != nil:
		src, origin = r.Local, "the policy given"
	case r.Fetch == nil:
		return nil, fmt.Errorf("%w: no source for policy %s: give its files", ErrPolicy, ref.Hash)
	default:
		doc, err := r.Fetch(ctx, ref.Hash, ref.SourceDigest)
		if err != nil {
			return nil, fmt.Errorf("%w: fetch the source of policy %s (source digest %s): %w", ErrPolicy, ref.Hash, ref.SourceDigest, err)
		}
		if src, err = policysource.Parse(doc); err != nil {
			return nil, fmt.Errorf("%w: the source served for policy %s: %w", ErrPolicy, ref.Hash, err)
		}
	}
	if got := src.Digest(); got != ref.SourceDigest {
		return nil, fmt.Errorf("%w: %s has source digest %s, but the policy entry at index %d commits %s: these are not the files that decided",
			ErrPolicy, origin, got, ref.Index, ref.SourceDigest)
	}
	if src.Engine != ref.Engine {
		return nil, fmt.Errorf("%w: %s is for engine %s, the policy entry at index %d names %s", ErrPolicy, origin, src.Engine, ref.Index, ref.Engine)
	}
	p, err := pdp.Compile(ctx, src, ref.Revision, origin)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if h := p.Version().Hash; h != ref.Hash {
		return nil, fmt.Errorf("%w: %s compiles to policy hash %s, the policy entry at index %d commits %s", ErrPolicy, origin, h, ref.Index, ref.Hash)
	}
	return p, nil
}

// Input rebuilds the policy input of decision d (input.md) from the entry
// and the agent's record as the log had it.
func Input(d *entry.Decision, rec api.Agent, registered bool) (*pdp.Input, error) {
	id, err := spiffeid.FromString(d.Actor)
	if err != nil {
		return nil, fmt.Errorf("replay: decision actor %q: %w", d.Actor, err)
	}
	status := agents.Unregistered
	if registered {
		status = rec.Status
	}
	in := &pdp.Input{
		Actor: pdp.Actor{ID: d.Actor, TrustDomain: id.TrustDomain().Name(), Path: id.Path(), Status: status,
			Owner: rec.Owner, Brokers: nonNil(rec.Brokers), Labels: rec.Labels},
		Action: d.Action, Resource: d.Resource, ArgsDigest: d.ArgsDigest, Broker: d.Broker,
		Findings: append([]pdp.Finding{}, d.Findings...), Time: d.Time, CorrelationID: d.CorrelationID,
	}
	if in.Actor.Labels == nil {
		in.Actor.Labels = map[string]string{}
	}
	if u := d.User; u != nil {
		in.User = &pdp.User{Issuer: u.Issuer, Subject: u.Subject, Scopes: nonNil(u.Scopes)}
	}
	if a := d.Attestation; a != nil && a.Claims != nil {
		c := a.Claims
		in.Attestation = &pdp.Attestation{Verified: true, Model: c["model.name"], ModelProvider: c["model.provider"],
			ModelVersion: c["model.version"], ToolManifest: c["tool.manifestDigest"], ToolName: c["tool.name"],
			SandboxProfile: c["sandbox.profile"], Broker: c["broker"], PolicyHash: c["policyHash"], CodeDigest: c["code.digest"]}
	}
	return in, nil
}

// gateRefusals are the refusals the gate makes before the policy that
// replay can re-derive from the log: a claimed actor, the registration,
// the broker.
func (r *Replayer) gateRefusals(d *entry.Decision, rec api.Agent, registered bool) []string {
	var codes []string
	if d.ClaimedActor != "" {
		codes = append(codes, reasons.ActorMismatch)
	}
	switch {
	case !registered:
		codes = append(codes, reasons.Unregistered)
	case rec.Status == agents.Revoked:
		codes = append(codes, reasons.Revoked)
	case d.Broker != "" && len(rec.Brokers) > 0 && !slices.Contains(rec.Brokers, d.Broker):
		codes = append(codes, reasons.Broker)
	}
	return codes
}

// committedByGate reports whether d carries a refusal only the gate makes
// before asking the policy.
func committedByGate(d *entry.Decision) bool {
	for _, rs := range d.Reasons {
		switch {
		case rs.Code == reasons.ActorMismatch, rs.Code == reasons.Unregistered, rs.Code == reasons.Revoked,
			rs.Code == reasons.Broker, rs.Code == reasons.AttestationInvalid, rs.Code == reasons.GuardrailError:
			return true
		case strings.HasPrefix(rs.Code, "user.") && d.User == nil:
			return true
		}
	}
	return false
}

func compare(committed, replayed Decided) []string {
	var diffs []string
	if committed.Effect != replayed.Effect {
		diffs = append(diffs, fmt.Sprintf("effect: committed %s, replayed %s", committed.Effect, replayed.Effect))
	}
	if !slices.Equal(committed.Reasons, replayed.Reasons) {
		diffs = append(diffs, fmt.Sprintf("reasons: committed %s, replayed %s", codes(committed.Reasons), codes(replayed.Reasons)))
	}
	return diffs
}

func codes(rs []entry.Reason) string {
	if len(rs) == 0 {
		return "[]"
	}
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s (%q)", r.Code, r.Message))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func hasCode(rs []entry.Reason, code string) bool {
	return slices.ContainsFunc(rs, func(r entry.Reason) bool { return r.Code == code })
}

// nonNil is s, or an empty list: input.schema.json wants lists present.
func nonNil(s []string) []string { return append(make([]string, 0, len(s)), s...) }
