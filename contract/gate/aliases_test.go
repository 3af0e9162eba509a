package gate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// legacy posts the ZT JavaScript SDK's request (ZeroTrustClient.decide:
// {actor, action, resource}, bearer JWT-SVID) to POST /actions and returns
// the status, the answer and the committed decision.
func (s *server) legacy(t *testing.T, c *client, body string) (int, api.LegacyActionResponse, *entry.Decision) {
	t.Helper()
	r := c.do("POST", "/actions", body)
	var lr api.LegacyActionResponse
	r.json(t, &lr)
	if r.status != 200 && r.status != 403 {
		t.Fatalf("/actions %s: %d %s", body, r.status, r.body)
	}
	return r.status, lr, s.committed(lr.Audit.Index, lr.Audit.LeafHash)
}

// TestLegacyActorAlias: an unmodified JS SDK request naming the agent by
// its registered alias (hello-world-agent, as in
// ../shared/testdata/legacy/denied-audit.json) is decided as that agent,
// and the entry records the alias and the SPIFFE ID it resolved to.
func TestLegacyActorAlias(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"brokers":["`+brokerID.String()+`"],"aliases":["hello-world-agent"]`)
	s.register(otherID, `,"aliases":["other-agent"]`)
	js := s.bearer(agentID)

	// The request of denied-audit.json, byte for byte: now a policy deny
	// of the agent, not an actor mismatch.
	status, lr, d := s.legacy(t, js, `{"actor":"hello-world-agent","action":"aws.ec2.terminate_instances","resource":"i-demo"}`)
	if status != 403 {
		t.Errorf("deny: status %d, want 403", status)
	}
	if lr.OK {
		t.Error("deny: ok is true")
	}
	if lr.Decision != "deny" {
		t.Errorf("deny: decision %q", lr.Decision)
	}
	if lr.Actor != "hello-world-agent" {
		t.Errorf("deny: answer actor %q, want the name the SDK sent", lr.Actor)
	}
	if d.Reasons[0].Code != "action.forbidden" {
		t.Errorf("deny: committed reason %s (%s), want action.forbidden", d.Reasons[0].Code, d.Reasons[0].Message)
	}
	if d.Actor != agentID.String() {
		t.Errorf("deny: committed actor %s, want %s", d.Actor, agentID)
	}
	if d.ActorAlias != "hello-world-agent" {
		t.Errorf("deny: committed actor_alias %q, want hello-world-agent", d.ActorAlias)
	}
	if d.ClaimedActor != "" {
		t.Errorf("deny: committed claimed_actor %q, want none", d.ClaimedActor)
	}

	// Allow: the receipt is for the agent's SPIFFE ID.
	status, lr, d = s.legacy(t, js, `{"actor":"hello-world-agent","action":"demo.echo","resource":"demo://hello"}`)
	if status != 200 {
		t.Fatalf("allow: status %d (%s)", status, lr.Reason)
	}
	if !lr.OK {
		t.Error("allow: ok is false")
	}
	if d.Effect != entry.Allow {
		t.Errorf("allow: committed %s", d.Effect)
	}
	if d.Actor != agentID.String() {
		t.Errorf("allow: committed actor %s, want %s", d.Actor, agentID)
	}
	if d.ActorAlias != "hello-world-agent" {
		t.Errorf("allow: committed actor_alias %q", d.ActorAlias)
	}
	claims, err := receipt.Verify(lr.Audit.Receipt, s.jwks(), receipt.Expect{Issuer: origin, Audience: brokerID.String(), Now: time.Now()})
	if err != nil {
		t.Fatalf("allow: receipt: %v", err)
	}
	if claims.Subject != agentID.String() {
		t.Errorf("allow: receipt subject %s, want %s", claims.Subject, agentID)
	}
	wantDigest, _ := entry.ActionDigest(entry.Action{Actor: agentID.String(), Action: "demo.echo", Resource: "demo://hello", Broker: brokerID.String()})
	if lr.Audit.ActionDigest != wantDigest {
		t.Errorf("allow: action digest %s, want the agent's %s", lr.Audit.ActionDigest, wantDigest)
	}

	// The SPIFFE ID itself, and no actor at all, are the caller too.
	status, lr, d = s.legacy(t, js, `{"action":"demo.echo","resource":"demo://hello"}`)
	if status != 200 {
		t.Errorf("no actor: status %d (%s)", status, lr.Reason)
	}
	if lr.Actor != agentID.String() {
		t.Errorf("no actor: answer actor %q, want %s", lr.Actor, agentID)
	}
	if d.ActorAlias != "" || d.ClaimedActor != "" {
		t.Errorf("no actor: committed actor_alias %q, claimed_actor %q; want neither", d.ActorAlias, d.ClaimedActor)
	}
	status, _, d = s.legacy(t, js, `{"actor":"`+agentID.String()+`","action":"demo.echo","resource":"demo://hello"}`)
	if status != 200 {
		t.Errorf("SPIFFE ID actor: status %d", status)
	}
	if d.ActorAlias != "" {
		t.Errorf("SPIFFE ID actor: committed actor_alias %q", d.ActorAlias)
	}

	// POST /v1/actions takes only the SPIFFE ID: an alias there is a
	// malformed request, refused before anything is decided.
	before := s.size()
	if r := js.do("POST", "/v1/actions", `{"actor":"hello-world-agent","action":"demo.echo","resource":"r"}`); r.status != 400 {
		t.Errorf("alias on /v1/actions: status %d, want 400", r.status)
	}
	if s.size() != before {
		t.Errorf("alias on /v1/actions: %d entries committed", s.size()-before)
	}

	// Anything else stays a committed actor mismatch: another agent's
	// alias, an unknown name.
	for _, tc := range []struct{ name, body, claims string }{
		{"another agent's alias", `{"actor":"other-agent","action":"demo.echo","resource":"r"}`, "other-agent"},
		{"unknown name", `{"actor":"hello-world-agent-2","action":"demo.echo","resource":"r"}`, "hello-world-agent-2"},
		{"not an alias form", `{"actor":"hello world agent","action":"demo.echo","resource":"r"}`, "hello world agent"},
	} {
		r := js.do("POST", "/actions", tc.body)
		if r.status != 403 {
			t.Errorf("%s: status %d, want 403", tc.name, r.status)
			continue
		}
		var ev api.LegacyActionResponse
		r.json(t, &ev)
		d := s.committed(ev.Audit.Index, ev.Audit.LeafHash)
		if d.Reasons[0].Code != "identity.actor_mismatch" {
			t.Errorf("%s: committed reason %s, want identity.actor_mismatch", tc.name, d.Reasons[0].Code)
		}
		if d.ClaimedActor != tc.claims {
			t.Errorf("%s: committed claimed_actor %q, want %q", tc.name, d.ClaimedActor, tc.claims)
		}
		if d.ActorAlias != "" {
			t.Errorf("%s: committed actor_alias %q", tc.name, d.ActorAlias)
		}
	}
}

// TestAliasesAreUnique: an alias names one agent. Binding one another
// registered agent holds is refused naming the field, and nothing is
// committed; a revoke or a new registration releases it.
func TestAliasesAreUnique(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"aliases":["hello-world-agent","demo"]`)
	before := s.size()
	r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"register","id":"`+otherID.String()+`","aliases":["other","hello-world-agent"]}`)
	if r.status != 409 {
		t.Fatalf("taken alias: status %d, want 409 (%s)", r.status, r.body)
	}
	var e httperr.Error
	r.json(t, &e)
	if e.Code != "alias_taken" {
		t.Errorf("code %q, want alias_taken", e.Code)
	}
	if e.Field != "aliases[1]" {
		t.Errorf("field %q, want aliases[1]", e.Field)
	}
	if !strings.Contains(e.Message, agentID.String()) {
		t.Errorf("message does not name the holder: %s", e.Message)
	}
	if s.size() != before {
		t.Errorf("the refused registration was committed (%d entries, were %d)", s.size(), before)
	}

	// The holder may register again with its own aliases.
	s.register(agentID, `,"aliases":["hello-world-agent"]`)
	// "demo" was released by that registration.
	s.register(otherID, `,"aliases":["demo"]`)
	var rec api.Agent
	s.mtls(adminID).do("GET", "/v1/agents/dev.ztlog.local/agent/demo", "").json(t, &rec)
	if len(rec.Aliases) != 1 || rec.Aliases[0] != "hello-world-agent" {
		t.Errorf("record aliases %q, want [hello-world-agent]", rec.Aliases)
	}
	// The agent reads its own record, aliases included.
	s.mtls(agentID).do("GET", "/v1/agents/dev.ztlog.local/agent/demo", "").json(t, &rec)
	if len(rec.Aliases) != 1 || rec.Aliases[0] != "hello-world-agent" {
		t.Errorf("own record aliases %q, want [hello-world-agent]", rec.Aliases)
	}

	// A revoked agent's aliases resolve for nobody and are free.
	if r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"revoke","id":"`+agentID.String()+`"}`); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	_, _, d := s.legacy(t, s.bearer(agentID), `{"actor":"hello-world-agent","action":"demo.echo","resource":"r"}`)
	if d.Reasons[0].Code != "identity.actor_mismatch" {
		t.Errorf("revoked agent's alias: committed reason %s, want identity.actor_mismatch first", d.Reasons[0].Code)
	}
	s.mtls(adminID).do("GET", "/v1/agents/dev.ztlog.local/agent/demo", "").json(t, &rec)
	if rec.Status != "revoked" {
		t.Errorf("status %q, want revoked", rec.Status)
	}
	if len(rec.Aliases) != 1 {
		t.Errorf("revoked record aliases %q, want the one it had", rec.Aliases)
	}
	s.register(otherID, `,"aliases":["demo","hello-world-agent"]`)
	_, _, d = s.legacy(t, s.bearer(otherID), `{"actor":"hello-world-agent","action":"demo.echo","resource":"r"}`)
	if d.Actor != otherID.String() {
		t.Errorf("re-bound alias: committed actor %s, want %s", d.Actor, otherID)
	}
	if d.ActorAlias != "hello-world-agent" {
		t.Errorf("re-bound alias: committed actor_alias %q", d.ActorAlias)
	}
}

// TestAliasesAreRebuiltFromTheLog: after a restart the registry, rebuilt
// from the agent entries, resolves the same aliases.
func TestAliasesAreRebuiltFromTheLog(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"aliases":["hello-world-agent","old-name"]`)
	s.register(otherID, `,"aliases":["other-agent"]`)
	s.register(agentID, `,"aliases":["hello-world-agent"]`)
	s.stop()
	s.start(options{})
	status, lr, d := s.legacy(t, s.bearer(agentID), `{"actor":"hello-world-agent","action":"demo.echo","resource":"demo://hello"}`)
	if status != 200 {
		t.Errorf("after restart: status %d (%s)", status, lr.Reason)
	}
	if d.ActorAlias != "hello-world-agent" {
		t.Errorf("after restart: committed actor_alias %q", d.ActorAlias)
	}
	_, _, d = s.legacy(t, s.bearer(agentID), `{"actor":"old-name","action":"demo.echo","resource":"r"}`)
	if d.Reasons[0].Code != "identity.actor_mismatch" {
		t.Errorf("after restart, a dropped alias: committed reason %s, want identity.actor_mismatch", d.Reasons[0].Code)
	}
	if r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"register","id":"`+agentID.String()+`","aliases":["other-agent"]}`); r.status != 409 {
		t.Errorf("after restart, another agent's alias: status %d, want 409", r.status)
	}
}
