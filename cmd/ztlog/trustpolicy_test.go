package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// `ztlog dev` writes the trust policy an auditor needs: with it alone,
// zt-audit verifies the witnessed checkpoint and audits every decision the
// dev log committed.
func TestDevTrustPolicyAudits(t *testing.T) {
	dir := t.TempDir()
	addr := devproc.FreeAddr(t)
	p := exec.Command(ztlogBin, "dev", "--data-dir", dir, "--listen", addr, "--checkpoint-interval", "100ms")
	p.Stdout, p.Stderr = io.Discard, io.Discard
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	base := "http://" + addr
	waitReady(t, base)
	devDir := filepath.Join(dir, "dev")
	trustFile := filepath.Join(devDir, "trust.policy")
	text, err := os.ReadFile(trustFile)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := trustpolicy.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(trust.Logs) != 1 || trust.Logs[0].Origin != devOrigin || trust.Quorum == nil || len(trust.Witnesses) != 1 || trust.Witnesses[0].URL != "" {
		t.Fatalf("trust policy:\n%s", text)
	}
	var allow api.ActionResponse
	for _, action := range []string{"demo.echo", "aws.ec2.terminate_instances"} {
		out, _ := exec.Command(ztBin, "decide", "--server", "https://"+addr, "--svid", filepath.Join(devDir, "agent"), "--action", action, "--resource", "i-demo", "--json").Output()
		if action == "demo.echo" {
			if err := json.Unmarshal(out, &allow); err != nil || allow.Receipt == "" {
				t.Fatalf("zt decide: %v\n%s", err, out)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // a checkpoint covering the decisions
	resp, err := http.Get(base + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v, err := trust.VerifyCheckpoint(cp, trustpolicy.VerifyOptions{Now: time.Now()}); err != nil || len(v.Cosignatures) != 1 {
		t.Fatalf("the dev checkpoint does not verify with trust.policy: %v\n%s", err, cp)
	}
	ztAudit := buildZtAudit(t)
	audit := exec.Command(ztAudit, "audit", "--log", base, "--policy", trustFile, "--window", "1000h")
	out, err := audit.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "VALID: every check passed") ||
		!strings.Contains(string(out), "decision.allow 1") || !strings.Contains(string(out), "decision.deny 1") || !strings.Contains(string(out), "witnessed by dev") {
		t.Fatalf("zt-audit audit of the dev log: %v\n%s", err, out)
	}

	// The evidence bundle of the allow, with the receipt the agent holds,
	// verifies offline with trust.policy alone; the server's own bundle
	// (without the receipt) does too; an altered bundle never does.
	work := t.TempDir()
	rcpt := filepath.Join(work, "receipt.jws")
	os.WriteFile(rcpt, []byte(allow.Receipt), 0o644)
	bundleFile := filepath.Join(work, "allow.bundle")
	out, err = exec.Command(ztAudit, "bundle", "--log", base, "--policy", trustFile, "--index", fmt.Sprint(allow.Log.Index), "--receipt", rcpt, "--out", bundleFile).CombinedOutput()
	if err != nil {
		t.Fatalf("zt-audit bundle: %v\n%s", err, out)
	}
	out, err = exec.Command(ztAudit, "verify", bundleFile, "--policy", trustFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "receipt.signature      PASS") || !strings.Contains(string(out), "witnessed by dev") {
		t.Fatalf("zt-audit verify of the dev bundle: %v\n%s", err, out)
	}
	resp, err = http.Get(fmt.Sprintf("%s/v1/bundles/%d", base, allow.Log.Index))
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	servedFile := filepath.Join(work, "served.bundle")
	os.WriteFile(servedFile, served, 0o644)
	out, err = exec.Command(ztAudit, "verify", servedFile, "--policy", trustFile, "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"valid": true`) {
		t.Fatalf("zt-audit verify of GET /v1/bundles: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(bundleFile)
	for i := 0; i < len(raw); i += 101 {
		c := append([]byte(nil), raw...)
		c[i] ^= 1
		os.WriteFile(bundleFile, c, 0o644)
		cmd := exec.Command(ztAudit, "verify", bundleFile, "--policy", trustFile)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("byte %d flipped: still verifies\n%s", i, out)
		}
	}
}
