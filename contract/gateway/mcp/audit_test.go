package mcp_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
)

// TestAuditCoversMCPCalls: zt-audit's whole-log audit of a log the gateway
// wrote — every allowed MCP call has its result (allow.result), every
// result links to its allow (result.link), every agent attestation and
// broker statement verifies against the dev SPIFFE bundle.
func TestAuditCoversMCPCalls(t *testing.T) {
	d := startDev(t)
	up := newCountingServer()
	_, cs := openGateway(t, gatewayOptions(t, d), up.transport(t))
	from := d.size(t)
	allows := 0
	for i, tool := range []string{"echo", "add", "delete_everything", "echo"} {
		args := map[string]any{"a": i, "b": 1}
		if tool == "echo" || tool == "delete_everything" {
			args = map[string]any{"message": "audit"}
		}
		if !call(t, cs, tool, args).IsError {
			allows++
		}
	}
	if allows != 3 {
		t.Fatalf("%d calls allowed, want 3", allows)
	}
	// Wait until every allow has its result in the log.
	deadline := time.Now().Add(15 * time.Second)
	for {
		results := 0
		for i := from; i < d.size(t); i++ {
			if _, ok := d.Entry(t, i).(*entry.Result); ok {
				results++
			}
		}
		if results == allows {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d results in the log after 15s, want %d", results, allows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd := exec.Command(auditBin, "audit", "--log", d.Dir+"/log/", "--policy", d.file("trust.policy"),
		"--spiffe-bundle", d.file("bundle.pem"), "--json", "--window", "1m", "--now", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zt-audit audit: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var rep struct {
		Valid  bool `json:"valid"`
		Checks []struct {
			ID                      string `json:"id"`
			Checked, Failed, Warned uint64
		} `json:"checks"`
		EntrySignatures string `json:"entry_signatures"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("zt-audit --json: %v\n%s", err, stdout.String())
	}
	if !rep.Valid {
		t.Fatalf("the audit failed:\n%s", stdout.String())
	}
	for _, c := range rep.Checks {
		switch c.ID {
		case "allow.result":
			if c.Warned != 0 {
				t.Errorf("allow.result: %d allows without a result\n%s", c.Warned, stdout.String())
			}
			if c.Checked < uint64(allows) {
				t.Errorf("allow.result checked %d allows, want at least %d", c.Checked, allows)
			}
		case "result.link":
			if c.Checked != uint64(allows) || c.Failed != 0 {
				t.Errorf("result.link: checked %d, failed %d; want %d results linked", c.Checked, c.Failed, allows)
			}
		}
	}
	if rep.EntrySignatures == "NOT checked" {
		t.Error("the audit did not check entry signatures")
	}
}
