package pdp

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Two policies that differ only in a METADATA annotation, which a rule
// reads with rego.metadata.rule(), decide differently: their hashes must
// differ (input.md: any rule, annotation or data change changes the hash),
// while a comment alone changes nothing.
func TestOPAHashCoversAnnotations(t *testing.T) {
	mk := func(label string) string {
		dir := t.TempDir()
		src := `package ztlog.authz

import rego.v1

default allow := false

# METADATA
# custom:
#   allowed_action: ` + label + `
allow if {
	input.action == rego.metadata.rule().custom.allowed_action
}
`
		if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a, b := mk("demo.echo"), mk("shell.exec")
	pa, err := LoadOPA(context.Background(), a, "")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := LoadOPA(context.Background(), b, "")
	if err != nil {
		t.Fatal(err)
	}
	in := &Input{Actor: Actor{ID: "spiffe://dev.ztlog.local/agent/demo", TrustDomain: "dev.ztlog.local", Path: "/agent/demo", Status: "registered", Brokers: []string{}, Labels: map[string]string{}}, Resource: "demo://hello", Findings: []Finding{}, Time: "2026-11-21T10:00:00Z", CorrelationID: "annotations"}
	in.Action = "shell.exec"
	da, _ := pa.Evaluate(context.Background(), in)
	db, _ := pb.Evaluate(context.Background(), in)
	if da.Allow == db.Allow {
		t.Fatal("setup: the annotation did not change the decision")
	}
	if pa.Version().Hash == pb.Version().Hash {
		t.Fatalf("two OPA policies that decide differently (allow %v vs %v) have the same policy hash %s", da.Allow, db.Allow, pa.Version().Hash)
	}
}

// A comment edit leaves the OPA hash as it was; an annotation edit does not.
func TestOPAHashCommentsOnly(t *testing.T) {
	write := func(src string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	hash := func(src string) string {
		p, err := LoadOPA(context.Background(), write(src), "")
		if err != nil {
			t.Fatal(err)
		}
		return p.Version().Hash
	}
	base := "package ztlog.authz\n\nimport rego.v1\n\ndefault allow := false\n"
	commented := "package ztlog.authz\n\n# a comment\nimport rego.v1\n\ndefault allow := false # another\n"
	if hash(base) != hash(commented) {
		t.Error("a comment changed the hash")
	}
	a := "package ztlog.authz\n\nimport rego.v1\n\n# METADATA\n# title: one\ndefault allow := false\n"
	b := "package ztlog.authz\n\nimport rego.v1\n\n# METADATA\n# title: two\ndefault allow := false\n"
	if hash(a) == hash(b) {
		t.Error("an annotation edit left the hash as it was")
	}
}
