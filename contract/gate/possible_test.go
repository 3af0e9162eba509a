package gate_test

import (
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// decideIndex makes a committed decision and returns its log index.
func decideIndex(t *testing.T, c *client) uint64 {
	t.Helper()
	r := c.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	var resp api.ActionResponse
	r.json(t, &resp)
	if r.status != 200 {
		t.Fatalf("decision: %d %s", r.status, r.body)
	}
	return resp.Log.Index
}

// POST /v1/actions/possible answers per action from the policy, commits
// nothing and returns no receipt; callers are authenticated and refused
// as for /v1/actions.
func TestPossibleCommitsNothing(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	revokedID := spiffeIDFrom("/agent/revoked")
	s.register(revokedID, "")
	if r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"revoke","id":"`+revokedID.String()+`"}`); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	agent := s.mtls(agentID)
	first := decideIndex(t, agent)

	body := `{"actions":["mcp.tool.everything.echo","mcp.tool.everything.add","mcp.tool.everything.printEnv"]}`
	for name, c := range map[string]*client{"mtls": agent, "jwt-svid": s.bearer(agentID)} {
		r := c.do("POST", "/v1/actions/possible", body)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		var resp api.PossibleResponse
		r.json(t, &resp)
		if resp.Actor != agentID.String() {
			t.Errorf("%s: actor %s, want %s", name, resp.Actor, agentID)
		}
		if want := s.pdp.Current().Version().Hash; resp.Policy.Hash != want {
			t.Errorf("%s: policy %s, want %s", name, resp.Policy.Hash, want)
		}
		want := []api.PossibleAnswer{{Action: "mcp.tool.everything.echo", Answer: "possible"},
			{Action: "mcp.tool.everything.add", Answer: "possible"}, {Action: "mcp.tool.everything.printEnv", Answer: "never"}}
		if len(resp.Answers) != len(want) {
			t.Fatalf("%s: %d answers, want %d", name, len(resp.Answers), len(want))
		}
		for i := range want {
			if resp.Answers[i] != want[i] {
				t.Errorf("%s: answer %d %+v, want %+v", name, i, resp.Answers[i], want[i])
			}
		}
		for _, member := range []string{`"receipt`, `"log"`, `"decision"`} {
			if strings.Contains(string(r.body), member) {
				t.Errorf("%s: the answer holds %s: %s", name, member, r.body)
			}
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
	}

	for name, tc := range map[string]struct {
		c      *client
		body   string
		status int
		code   string
		field  string
	}{
		"anonymous":     {s.anonymous(), body, 401, "unauthenticated", "Authorization"},
		"unregistered":  {s.mtls(otherID), body, 403, gate.ReasonUnregistered, ""},
		"revoked":       {s.mtls(revokedID), body, 403, gate.ReasonRevoked, ""},
		"unknown field": {agent, `{"actions":["a"],"actor":"` + otherID.String() + `"}`, 400, api.CodeUnknownField, "actor"},
		"bad action":    {agent, `{"actions":["a b"]}`, 400, api.CodeInvalidField, "actions[0]"},
		"none":          {agent, `{"actions":[]}`, 400, api.CodeInvalidField, "actions"},
	} {
		r := tc.c.do("POST", "/v1/actions/possible", tc.body)
		var e httperr.Error
		r.json(t, &e)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", name, r.status, tc.status, r.body)
		}
		if e.Code != tc.code {
			t.Errorf("%s: code %q, want %q", name, e.Code, tc.code)
		}
		if e.Field != tc.field {
			t.Errorf("%s: field %q, want %q", name, e.Field, tc.field)
		}
	}

	// Nothing was appended between the two decisions.
	if next := decideIndex(t, agent); next != first+1 {
		t.Fatalf("the decision after the questions is at %d, want %d: %d entries were committed by /v1/actions/possible", next, first+1, next-first-1)
	}
}
