package agents

import (
	"testing"

	"github.com/zt-infra/ztlog/contract/entry"
)

// A change applied late (an abandoned Commit whose entry was sequenced
// after a newer change was applied) does not override the newer one: the
// registry follows the log's order, not the order the changes arrive in.
func TestApplyKeepsTheNewerChange(t *testing.T) {
	r := New(nil)
	const id = "spiffe://example.org/agent/a"
	r.apply(&entry.Agent{Op: entry.AgentRegister, ID: id, Owner: "new"}, 7)
	r.apply(&entry.Agent{Op: entry.AgentRevoke, ID: id}, 5)
	if a, _ := r.Lookup(id); a.Status != Registered || a.Index != 7 || a.Owner != "new" {
		t.Fatalf("after a register at 7 and a late revoke at 5: %+v, want the register at 7", a)
	}
	r.apply(&entry.Agent{Op: entry.AgentRevoke, ID: id}, 9)
	if a, _ := r.Lookup(id); a.Status != Revoked || a.Index != 9 || a.Owner != "new" {
		t.Fatalf("after a revoke at 9: %+v", a)
	}
}
