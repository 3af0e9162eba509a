package agents

import (
	"testing"

	"github.com/zt-infra/ztlog/contract/entry"
)

// An alias resolves to the one registered agent whose record lists it.
// Two agents can list the same alias only when their registrations raced
// (an abandoned Commit sequenced late); the alias then resolves for
// neither, whatever order the changes are applied in, until one lets it go.
func TestAliasOwner(t *testing.T) {
	const a, b = "spiffe://example.org/agent/a", "spiffe://example.org/agent/b"
	for _, order := range [][]int{{1, 2}, {2, 1}} {
		r := New(nil)
		changes := map[int]*entry.Agent{
			1: {Op: entry.AgentRegister, ID: a, Aliases: []string{"shared", "only-a"}},
			2: {Op: entry.AgentRegister, ID: b, Aliases: []string{"shared"}},
		}
		for _, i := range order {
			r.apply(changes[i], uint64(i))
		}
		if id, ok := r.AliasOwner("only-a"); !ok || id != a {
			t.Errorf("order %v: only-a resolves to %q (%v), want %s", order, id, ok, a)
		}
		if id, ok := r.AliasOwner("shared"); ok {
			t.Errorf("order %v: an alias two agents list resolves to %s", order, id)
		}
		if _, ok := r.AliasOwner("nobody"); ok {
			t.Errorf("order %v: an unknown alias resolves", order)
		}
		// b registers again without it: a alone holds it.
		r.apply(&entry.Agent{Op: entry.AgentRegister, ID: b}, 3)
		if id, ok := r.AliasOwner("shared"); !ok || id != a {
			t.Errorf("order %v: after b let it go, shared resolves to %q (%v), want %s", order, id, ok, a)
		}
		// A revoked agent holds no alias; its record still shows them.
		r.apply(&entry.Agent{Op: entry.AgentRevoke, ID: a}, 4)
		if id, ok := r.AliasOwner("only-a"); ok {
			t.Errorf("order %v: a revoked agent's alias resolves to %s", order, id)
		}
		if rec, _ := r.Lookup(a); len(rec.Aliases) != 2 {
			t.Errorf("order %v: revoked record aliases %q, want the two it had", order, rec.Aliases)
		}
	}
}
