// Package policy is the policy decision point (PDP) of the decision path:
// one engine-agnostic interface, one input document (input.md,
// input.schema.json), and the engines behind it (OPA embedded as a
// library). The decision path never sees an engine directly: it asks the
// PDP, and anything that is not an explicit allow — an undefined result, an
// engine error, a timeout, a panic — is a deny with the reason.
package pdp

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/text"
)

// Input is the document every engine evaluates. See input.md for each
// field and how it maps onto Cedar.
type Input struct {
	Actor         Actor        `json:"actor"`
	User          *User        `json:"user,omitempty"`
	Action        string       `json:"action"`
	Resource      string       `json:"resource"`
	ArgsDigest    string       `json:"args_digest,omitempty"`
	Broker        string       `json:"broker,omitempty"`
	Findings      []Finding    `json:"findings"`
	Attestation   *Attestation `json:"attestation,omitempty"`
	Time          string       `json:"time"`
	CorrelationID string       `json:"correlation_id"`
}

// Actor is the authenticated agent and its registration.
type Actor struct {
	// ID is the authenticated SPIFFE ID; TrustDomain and Path its parts.
	ID          string `json:"id"`
	TrustDomain string `json:"trust_domain"`
	Path        string `json:"path"`
	// Status is "registered", "revoked" or "unregistered".
	Status  string            `json:"status"`
	Owner   string            `json:"owner,omitempty"`
	Brokers []string          `json:"brokers"`
	Labels  map[string]string `json:"labels"`
}

// User is the delegated user the agent acts for, as policy input: unlike
// entry.User (where an empty list is left out), scopes is always present,
// as input.schema.json requires, so policies need no existence check.
type User struct {
	Issuer  string   `json:"issuer"`
	Subject string   `json:"subject"`
	Scopes  []string `json:"scopes"`
}

// Finding is a guardrail finding as committed (entry.Finding).
type Finding = entry.Finding

// Attestation holds the claims of the agent's verified runtime attestation.
// Verified is false when none was sent or it did not verify; the other
// fields are then empty.
type Attestation struct {
	Verified       bool   `json:"verified"`
	Model          string `json:"model,omitempty"`
	ModelProvider  string `json:"model_provider,omitempty"`
	ModelVersion   string `json:"model_version,omitempty"`
	ToolManifest   string `json:"tool_manifest,omitempty"`
	ToolName       string `json:"tool_name,omitempty"`
	SandboxProfile string `json:"sandbox_profile,omitempty"`
	Broker         string `json:"broker,omitempty"`
	PolicyHash     string `json:"policy_hash,omitempty"`
	CodeDigest     string `json:"code_digest,omitempty"`
}

// Decision is an engine's answer.
type Decision struct {
	Allow   bool
	Reasons []entry.Reason
}

// Version identifies a loaded policy.
type Version struct {
	// Engine is "opa" or "cedar".
	Engine string `json:"engine"`
	// Hash is the policy hash: over the meaning of the rules and data, so
	// formatting and comments do not change it and any rule or data change
	// does.
	Hash string `json:"hash"`
	// Revision is the operator's name for the version (optional).
	Revision string `json:"revision,omitempty"`
	// SourceDigest is the digest of the source files exactly as loaded.
	SourceDigest string `json:"source_digest"`
	// Source is where it was loaded from.
	Source string `json:"source"`
}

// Ref is the reference committed in decision entries.
func (v Version) Ref() entry.PolicyRef {
	return entry.PolicyRef{Hash: v.Hash, Engine: v.Engine, Revision: v.Revision}
}

// Policy is one loaded, compiled policy version.
type Policy interface {
	Version() Version
	// Evaluate decides one input. It must honour ctx's deadline.
	Evaluate(ctx context.Context, in *Input) (Decision, error)
}

// Reason codes the PDP itself produces.
const (
	ReasonDefault   = "policy.deny"      // no rule allowed it
	ReasonUndefined = "policy.undefined" // the policy gave no answer
	ReasonError     = "policy.error"     // the engine failed
	ReasonTimeout   = "policy.timeout"   // the engine did not answer in time
)

// PDP holds the policy in force and evaluates inputs against it, failing
// closed. Safe for concurrent use; Swap changes the policy atomically.
type PDP struct {
	cur     atomic.Pointer[holder]
	timeout time.Duration
}

type holder struct{ p Policy }

// NewPDP starts with p in force; each evaluation is bounded by timeout
// (default 1s).
func NewPDP(p Policy, timeout time.Duration) *PDP {
	if timeout <= 0 {
		timeout = time.Second
	}
	d := &PDP{timeout: timeout}
	d.cur.Store(&holder{p})
	return d
}

// Current is the policy in force.
func (d *PDP) Current() Policy { return d.cur.Load().p }

// Swap puts p in force and returns the previous policy.
func (d *PDP) Swap(p Policy) Policy { return d.cur.Swap(&holder{p}).p }

// Decide evaluates in. It always returns a decision and the version that
// made it: a failure (error, timeout, panic, undefined) is a deny whose
// reason says what failed; err is then also set, for logs and metrics.
func (d *PDP) Decide(ctx context.Context, in *Input) (dec Decision, v Version, err error) {
	p := d.Current()
	v = p.Version()
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("policy engine %s panicked: %v\n%s", v.Engine, r, debug.Stack())
			dec = Decision{Reasons: []entry.Reason{{Code: ReasonError, Message: fmt.Sprintf("policy engine %s failed (panic): %v", v.Engine, r)}}}
		}
	}()
	dec, err = p.Evaluate(ctx, in)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil):
		return Decision{Reasons: []entry.Reason{{Code: ReasonTimeout, Message: fmt.Sprintf("policy engine %s did not decide within %s", v.Engine, d.timeout)}}}, v, err
	case errors.Is(err, ErrUndefined):
		return Decision{Reasons: []entry.Reason{{Code: ReasonUndefined, Message: err.Error()}}}, v, err
	case err != nil:
		return Decision{Reasons: []entry.Reason{{Code: ReasonError, Message: fmt.Sprintf("policy engine %s failed: %v", v.Engine, text.Cut(err.Error(), 512))}}}, v, err
	}
	if !dec.Allow && len(dec.Reasons) == 0 {
		dec.Reasons = []entry.Reason{{Code: ReasonDefault, Message: "no policy rule allows this action"}}
	}
	return dec, v, nil
}

// ErrUndefined: the policy produced no decision for the input.
var ErrUndefined = errors.New("policy: undefined")

// Engines maps an engine name to its loader; adding an engine is adding a
// line here (and its file).
var Engines = map[string]func(ctx context.Context, path, revision string) (Policy, error){
	"opa":   LoadOPA,
	"cedar": LoadCedar,
}

// Load loads a policy with the named engine.
func Load(ctx context.Context, engine, path, revision string) (Policy, error) {
	load, ok := Engines[engine]
	if !ok {
		names := make([]string, 0, len(Engines))
		for n := range Engines {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("policy: unknown engine %q (known: %s)", engine, strings.Join(names, ", "))
	}
	return load(ctx, path, revision)
}
