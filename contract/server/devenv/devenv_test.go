package devenv

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var policies = fstest.MapFS{
	"opa/policy.rego":    {Data: []byte("package ztlog\n")},
	"cedar/policy.cedar": {Data: []byte("permit(principal, action, resource);\n")},
}

// Create writes SVIDs for the four dev identities; a second Create keeps the
// receipt key and the operator's policy edits and reissues the SVIDs.
func TestCreateKeepsKeysAndPolicyEdits(t *testing.T) {
	dir := t.TempDir()
	e, err := Create(dir, "127.0.0.1:0", policies)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := x509svid.Load(e.SVID("agent")+".pem", e.SVID("agent")+".key")
	if err != nil {
		t.Fatal(err)
	}
	if agent.ID != AgentID {
		t.Errorf("agent SVID is %s, want %s", agent.ID, AgentID)
	}
	rk1, err := os.ReadFile(e.ReceiptKey)
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(e.Policy("opa"), "policy.rego")
	if err := os.WriteFile(edited, []byte("package ztlog # edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2, err := Create(dir, "127.0.0.1:0", policies)
	if err != nil {
		t.Fatal(err)
	}
	rk2, _ := os.ReadFile(e2.ReceiptKey)
	if !bytes.Equal(rk1, rk2) {
		t.Error("a second Create replaced the receipt key")
	}
	if b, _ := os.ReadFile(edited); string(b) != "package ztlog # edited\n" {
		t.Errorf("a second Create overwrote the edited policy: %q", b)
	}
	agent2, err := x509svid.Load(e2.SVID("agent")+".pem", e2.SVID("agent")+".key")
	if err != nil {
		t.Fatal(err)
	}
	if agent2.Certificates[0].SerialNumber.Cmp(agent.Certificates[0].SerialNumber) == 0 {
		t.Error("a second Create did not reissue the agent SVID")
	}
	if _, err := os.Stat(filepath.Join(e.Policy("cedar"), "policy.cedar")); err != nil {
		t.Errorf("cedar example policy: %v", err)
	}
}
