package pdp

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// entities.json may list the agent itself, as a member of a group: the
// request's principal keeps those parents (its attributes come from the
// request), so a forbid on the group fires for it and for no one else.
func TestCedarPrincipalKeepsItsGroupsFromTheEntitiesFile(t *testing.T) {
	dir := t.TempDir()
	pol := `permit (principal, action, resource);
@code("agent.quarantined")
forbid (principal in ZT::Group::"quarantined", action, resource);
`
	ents := `[
 {"uid": {"type": "ZT::Group", "id": "quarantined"}, "attrs": {}, "parents": []},
 {"uid": {"type": "ZT::Agent", "id": "spiffe://dev.ztlog.local/agent/demo"}, "attrs": {}, "parents": [{"type": "ZT::Group", "id": "quarantined"}]}
]`
	os.WriteFile(filepath.Join(dir, "authz.cedar"), []byte(pol), 0o644)
	os.WriteFile(filepath.Join(dir, "entities.json"), []byte(ents), 0o644)
	p, err := Load(context.Background(), "cedar", dir, "")
	if err != nil {
		t.Fatal(err)
	}
	decide := func(id string) Decision {
		in := &Input{Actor: Actor{ID: id, TrustDomain: "dev.ztlog.local", Status: "registered", Brokers: []string{}, Labels: map[string]string{}},
			Action: "demo.echo", Resource: "demo://hello", Findings: []Finding{}, Time: "2026-11-21T10:00:00Z", CorrelationID: "entities"}
		d, _, err := NewPDP(p, time.Second).Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := decide("spiffe://dev.ztlog.local/agent/demo"); d.Allow || len(d.Reasons) == 0 || d.Reasons[0].Code != "agent.quarantined" {
		t.Errorf("an agent the entities file puts in ZT::Group::\"quarantined\": %+v, want the forbid's deny", d)
	}
	if d := decide("spiffe://dev.ztlog.local/agent/other"); !d.Allow {
		t.Errorf("an agent in no group: %+v, want allow", d)
	}
}
