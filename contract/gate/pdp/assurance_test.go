package pdp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadText(t *testing.T, engine, file, text string) (Policy, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(context.Background(), engine, dir, "")
}

func decideOn(t *testing.T, p Policy) Decision {
	t.Helper()
	in := &Input{Actor: Actor{ID: "spiffe://td/agent/a", TrustDomain: "td", Path: "/agent/a", Status: "registered", Brokers: []string{}, Labels: map[string]string{}},
		Action: "deploy.production", Resource: "r", Findings: []Finding{}, Time: "2026-11-21T10:00:00Z", CorrelationID: "c"}
	d, _, _ := NewPDP(p, time.Second).Decide(context.Background(), in)
	return d
}

func TestOPAAssurance(t *testing.T) {
	for name, tc := range map[string]struct {
		rule      string
		allow     bool
		assurance Assurance
		reason    string
	}{
		"undefined is sequenced":  {"", true, Sequenced, ""},
		"witnessed":               {`assurance := "witnessed"`, true, Witnessed, ""},
		"sequenced":               {`assurance := "sequenced"`, true, Sequenced, ""},
		"unknown level is a deny": {`assurance := "notarised"`, false, "", ReasonError},
		"not a string is a deny":  {`assurance := 2`, false, "", ReasonError},
	} {
		p, err := loadText(t, "opa", "authz.rego", "package ztlog.authz\nimport rego.v1\nallow := true\n"+tc.rule+"\n")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := decideOn(t, p)
		if d.Allow != tc.allow {
			t.Errorf("%s: allow %v, want %v (%v)", name, d.Allow, tc.allow, d.Reasons)
		}
		if tc.allow && d.Assurance != tc.assurance {
			t.Errorf("%s: assurance %q, want %q", name, d.Assurance, tc.assurance)
		}
		if tc.reason != "" && (len(d.Reasons) == 0 || d.Reasons[0].Code != tc.reason) {
			t.Errorf("%s: reasons %v, want %s", name, d.Reasons, tc.reason)
		}
	}
}

func TestCedarAssurance(t *testing.T) {
	p, err := loadText(t, "cedar", "a.cedar", `@assurance("witnessed") permit (principal, action == ZT::Action::"deploy.production", resource);
permit (principal, action, resource);`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decideOn(t, p); d.Assurance != Witnessed {
		t.Errorf("an allow one of whose permits is witnessed: assurance %q, want witnessed", d.Assurance)
	}
	p, err = loadText(t, "cedar", "a.cedar", `permit (principal, action, resource);`)
	if err != nil {
		t.Fatal(err)
	}
	if d := decideOn(t, p); d.Assurance != Sequenced {
		t.Errorf("no @assurance: %q, want sequenced", d.Assurance)
	}
	for text, want := range map[string]string{
		`@assurance("notarised") permit (principal, action, resource);`: `assurance "notarised"`,
		`@assurance("witnessed") forbid (principal, action, resource);`: "permit policies only",
	} {
		if _, err := loadText(t, "cedar", "a.cedar", text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: load error %v, want one saying %q", text, err, want)
		}
	}
}
