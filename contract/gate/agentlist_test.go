package gate_test

import (
	"testing"

	"github.com/zt-infra/ztlog/contract/api"
)

// GET /v1/agents without id lists every record, sorted, for
// administrators; an agent may not list; ?id= still reads one record.
func TestListAgents(t *testing.T) {
	s := newServer(t, options{})
	s.register(otherID, "")
	s.register(agentID, `,"owner":"o1"`)
	var list api.AgentList
	r := s.mtls(adminID).do("GET", "/v1/agents", "")
	if r.status != 200 {
		t.Fatalf("list as admin: HTTP %d %s", r.status, r.body)
	}
	r.json(t, &list)
	if len(list.Agents) != 2 {
		t.Fatalf("list has %d records, want 2: %+v", len(list.Agents), list.Agents)
	}
	if list.Agents[0].ID > list.Agents[1].ID {
		t.Errorf("list is not sorted by ID: %s before %s", list.Agents[0].ID, list.Agents[1].ID)
	}
	if r := s.mtls(agentID).do("GET", "/v1/agents", ""); r.status != 403 {
		t.Errorf("list as an agent: HTTP %d, want 403", r.status)
	}
	if r := s.mtls(adminID).do("GET", "/v1/agents?id=", ""); r.status != 400 {
		t.Errorf("an empty id: HTTP %d, want 400", r.status)
	}
}
