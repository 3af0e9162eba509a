package pdp

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var demoActor = ActorID{ID: "spiffe://dev.ztlog.local/agent/demo", TrustDomain: "dev.ztlog.local", Path: "/agent/demo"}

func possibleOf(t *testing.T, p Policy, actor ActorID, actions ...string) []Possibility {
	t.Helper()
	got, v, err := NewPDP(p, 0).Possible(context.Background(), actor, actions)
	if err != nil {
		t.Fatalf("Possible: %v", err)
	}
	if v.Hash != p.Version().Hash {
		t.Fatalf("answered by %s, want the policy in force %s", v.Hash, p.Version().Hash)
	}
	return got
}

// The dev example policy: echo and add of any MCP server are possible for
// a dev agent, every other MCP tool never; the same tools are never for an
// agent outside the allow lists' prefix.
func TestOPAPossibleExamplePolicy(t *testing.T) {
	p, err := LoadOPA(context.Background(), filepath.Join(examples, "opa"), "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		actor  ActorID
		action string
		want   Possibility
	}{
		{demoActor, "mcp.tool.everything.echo", Possible},
		{demoActor, "mcp.tool.everything.add", Possible},
		{demoActor, "mcp.tool.other.echo", Possible},
		{demoActor, "mcp.tool.everything.printEnv", Never},
		{demoActor, "mcp.tool.everything.longRunningOperation", Never},
		{demoActor, "mcp.tool.everything.echo2", Never},
		{demoActor, "aws.ec2.terminate_instances", Never},
		// search.deep depends on the user's scopes: possible.
		{demoActor, "search.deep", Possible},
		{demoActor, "search.fast", Possible},
		// shell.* needs an attestation: possible (it may come).
		{demoActor, "shell.run", Possible},
		{ActorID{ID: "spiffe://other.example/agent/x", TrustDomain: "other.example", Path: "/agent/x"}, "mcp.tool.everything.echo", Never},
		{ActorID{ID: "spiffe://other.example/agent/x", TrustDomain: "other.example", Path: "/agent/x"}, "search.fast", Possible},
	}
	for _, c := range cases {
		got := possibleOf(t, p, c.actor, c.action)
		if got[0] != c.want {
			t.Errorf("%s %s: %s, want %s", c.actor.ID, c.action, got[0], c.want)
		}
	}
}

func opaPolicyFrom(t *testing.T, module string, data string) Policy {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	if data != "" {
		if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := LoadOPA(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Policies whose allow depends on an unknown input member, or that allow
// by default, are possible; Never only where no body can hold.
func TestOPAPossibleDependsOnUnknowns(t *testing.T) {
	cases := []struct {
		name, module, data, action string
		want                       Possibility
	}{
		{"resource", `package ztlog.authz
default allow := false
allow if { input.action == "files.read"; startswith(input.resource, "/public/") }`, "", "files.read", Possible},
		{"resource, other action", `package ztlog.authz
default allow := false
allow if { input.action == "files.read"; startswith(input.resource, "/public/") }`, "", "files.write", Never},
		{"default allow true", `package ztlog.authz
default allow := true
allow := false if input.resource == "x"`, "", "anything", Possible},
		{"allow by default, denied by a rule", `package ztlog.authz
default allow := true
allow := false if input.action == "x"`, "", "x", Never},
		{"whole actor object", `package ztlog.authz
allow if count(input.actor) > 3`, "", "a", Possible},
		{"any input member", `package ztlog.authz
allow if { some k; input[k] == "magic" }`, "", "a", Possible},
		{"labels", `package ztlog.authz
allow if input.actor.labels.tier == "prod"`, "", "a", Possible},
		{"time", `package ztlog.authz
allow if time.parse_rfc3339_ns(input.time) > 0`, "", "a", Possible},
		{"clock built-in", `package ztlog.authz
allow if time.now_ns() < 0`, "", "a", Possible},
		{"with", `package ztlog.authz
allow if ok with input.action as "b"
ok if input.action == "b"`, "", "a", Possible},
		{"data", `package ztlog.authz
allow if input.action in data.acts`, `{"acts": ["b"]}`, "a", Never},
		{"data, listed", `package ztlog.authz
allow if input.action in data.acts`, `{"acts": ["b"]}`, "b", Possible},
		{"negation", `package ztlog.authz
allow if not input.resource == "x"`, "", "a", Possible},
		{"no allow rule", `package ztlog.authz
reasons contains "x" if true`, "", "a", Never},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := possibleOf(t, opaPolicyFrom(t, c.module, c.data), demoActor, c.action)
			if got[0] != c.want {
				t.Errorf("%s: %s, want %s", c.action, got[0], c.want)
			}
		})
	}
}

// A policy the engine cannot evaluate partially (a built-in error on known
// values) answers Possible, with the error.
func TestOPAPossibleErrorIsPossible(t *testing.T) {
	p := opaPolicyFrom(t, `package ztlog.authz
allow if to_number(input.action) > 1`, "")
	got, _, err := NewPDP(p, 0).Possible(context.Background(), demoActor, []string{"not-a-number"})
	if err == nil {
		t.Fatal("no error for a failing partial evaluation")
	}
	if got[0] != Possible {
		t.Fatalf("%s, want possible", got[0])
	}
}

// Cedar cannot answer soundly in this version: always Possible, no error.
func TestCedarPossibleIsAlwaysPossible(t *testing.T) {
	p, err := LoadCedar(context.Background(), filepath.Join(examples, "cedar"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := possibleOf(t, p, demoActor, "mcp.tool.everything.printEnv", "mcp.tool.everything.echo")
	for i, g := range got {
		if g != Possible {
			t.Errorf("answer %d: %s, want possible", i, g)
		}
	}
}

// Every member of the input is either known to a possibility question (the
// actor's SPIFFE ID and parts, the action) or one of opaUnknowns.
func TestOPAUnknownsCoverInput(t *testing.T) {
	in := demoInput("a")
	in.User = &User{Scopes: []string{}}
	in.Attestation = &Attestation{}
	in.ArgsDigest, in.Broker, in.Actor.Owner = "d", "b", "o"
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	var members []string
	for k := range top {
		if k != "actor" {
			members = append(members, "input."+k)
		}
	}
	for k := range top["actor"].(map[string]any) {
		members = append(members, "input.actor."+k)
	}
	known := map[string]bool{"input.action": true, "input.actor.id": true, "input.actor.trust_domain": true, "input.actor.path": true}
	unknown := map[string]bool{}
	for _, u := range opaUnknowns {
		unknown[u] = true
	}
	sort.Strings(members)
	for _, m := range members {
		if !known[m] && !unknown[m] {
			t.Errorf("input member %s is neither known nor unknown to Possible", m)
		}
	}
	for u := range unknown {
		if !strings.HasPrefix(u, "input.") {
			t.Errorf("unknown %s is not an input member", u)
		}
	}
}

// Out of time is Possible, with the error; the next question, in time,
// answers again.
func TestOPAPossibleTimeoutIsPossible(t *testing.T) {
	p, err := LoadOPA(context.Background(), filepath.Join(examples, "opa"), "")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := NewPDP(p, time.Nanosecond).Possible(context.Background(), demoActor, []string{"mcp.tool.everything.printEnv"})
	if err == nil {
		t.Fatal("no error when out of time")
	}
	if got[0] != Possible {
		t.Fatalf("out of time: %s, want possible", got[0])
	}
	if again := possibleOf(t, p, demoActor, "mcp.tool.everything.printEnv"); again[0] != Never {
		t.Fatalf("in time: %s, want never", again[0])
	}
}
