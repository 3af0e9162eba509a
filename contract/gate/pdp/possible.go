package pdp

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Possibility answers "could the policy in force ever allow this action
// for this actor?". It is advisory: never evidence, never an
// authorization; every call is still decided (and committed) by Decide.
type Possibility string

// Possibilities.
const (
	// Never: no input with this actor's SPIFFE ID and this action makes
	// the policy allow — whatever the resource, arguments, broker, user,
	// time, attestation, findings or the actor's registration.
	Never Possibility = "never"
	// Possible: some such input may be allowed, or the engine cannot tell.
	Possible Possibility = "possible"
)

// ActorID is what a possibility question knows of the actor: its SPIFFE
// ID and that ID's parts, nothing that changes with registrations.
type ActorID struct {
	ID, TrustDomain, Path string
}

// possibler is an engine that can answer Never soundly.
type possibler interface {
	possible(ctx context.Context, actor ActorID, action string) (Possibility, error)
}

// Possible answers, for each action, whether the policy in force could
// ever allow it for actor, and the version that answered. The answer
// depends only on the version, the actor's SPIFFE ID and the action. Any
// doubt is Possible: an engine that cannot answer (Cedar), a partial
// evaluation error, panic, or the PDP's timeout (which bounds the whole
// list); errs names the first action answered Possible because of a
// failure (for logs), nil when there was none.
func (d *PDP) Possible(ctx context.Context, actor ActorID, actions []string) (out []Possibility, v Version, errs error) {
	p := d.Current()
	v = p.Version()
	out = make([]Possibility, len(actions))
	for i := range out {
		out[i] = Possible
	}
	pe, ok := p.(possibler)
	if !ok {
		return out, v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	for i, a := range actions {
		ans, err := safePossible(ctx, pe, actor, a)
		if err != nil {
			if errs == nil {
				errs = fmt.Errorf("policy engine %s could not tell whether %q is possible (answered possible): %w", v.Engine, a, err)
			}
			continue
		}
		out[i] = ans
	}
	return out, v, errs
}

func safePossible(ctx context.Context, pe possibler, actor ActorID, action string) (ans Possibility, err error) {
	defer func() {
		if r := recover(); r != nil {
			ans, err = Possible, fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	ans, err = pe.possible(ctx, actor, action)
	switch {
	case err != nil:
		return Possible, err
	case ctx.Err() != nil:
		// An evaluation cut short may have missed a residual.
		return Possible, ctx.Err()
	}
	return ans, nil
}

// opaAllowQuery is the query partially evaluated: a Never needs it to have
// no residual query at all.
const opaAllowQuery = OPAQuery + ".allow == true"

// opaUnknowns are the input members a possibility question does not know:
// every member of Input (input.md) but the actor's SPIFFE ID and its parts
// and the action. A member the input never has is undefined in every
// decision, so it is left undefined here too. TestOPAUnknownsCoverInput
// keeps this list complete.
var opaUnknowns = []string{
	"input.actor.status", "input.actor.owner", "input.actor.brokers", "input.actor.labels",
	"input.user", "input.resource", "input.args_digest", "input.broker", "input.findings",
	"input.attestation", "input.time", "input.correlation_id",
}

var opaUnknownTerms = func() []*ast.Term {
	ts := make([]*ast.Term, len(opaUnknowns))
	for i, u := range opaUnknowns {
		ts[i] = ast.MustParseTerm(u)
	}
	return ts
}()

// partial is the policy prepared for partial evaluation of opaAllowQuery,
// built on first use (most services are never asked).
func (p *opaPolicy) partial(ctx context.Context) (rego.PreparedPartialQuery, error) {
	p.partialOnce.Do(func() {
		opts := append(p.regoOptions(), rego.Query(opaAllowQuery))
		// Non-deterministic built-ins (time.now_ns, http.send, ...) stay
		// unevaluated (residual): OPA's default, kept explicit.
		opts = append(opts, rego.NondeterministicBuiltins(false))
		// Prepared once and kept, error included: not cut short by the
		// first caller's deadline.
		p.partialQuery, p.partialErr = rego.New(opts...).PrepareForPartial(context.WithoutCancel(ctx))
	})
	return p.partialQuery, p.partialErr
}

// possible partially evaluates "allow == true" with the actor's ID and the
// action known and every other input member unknown. No residual query
// means no value of the unknowns makes allow true: Never. Anything else
// (a residual, even one that looks unsatisfiable, or support rules) is
// Possible. The reasons and assurance rules only turn an allow into a deny
// or an error (Evaluate), so they cannot make a Never allowable.
func (p *opaPolicy) possible(ctx context.Context, actor ActorID, action string) (Possibility, error) {
	pq, err := p.partial(ctx)
	if err != nil {
		return Possible, err
	}
	in, err := ast.InterfaceToValue(map[string]any{
		"actor":  map[string]any{"id": actor.ID, "trust_domain": actor.TrustDomain, "path": actor.Path},
		"action": action,
	})
	if err != nil {
		return Possible, err
	}
	res, err := pq.Partial(ctx, rego.EvalParsedInput(in), rego.EvalParsedUnknowns(opaUnknownTerms))
	if err != nil {
		return Possible, err
	}
	if len(res.Queries) == 0 && len(res.Support) == 0 {
		return Never, nil
	}
	return Possible, nil
}
