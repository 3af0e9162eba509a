package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/verifier/policy"
)

// `ztlog dev` writes the trust policy an auditor needs: with it alone,
// zt-audit verifies the witnessed checkpoint and audits every decision the
// dev log committed.
func TestDevTrustPolicyAudits(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
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
	trust, err := policy.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(trust.Logs) != 1 || trust.Logs[0].Origin != devOrigin || trust.Quorum == nil || len(trust.Witnesses) != 1 || trust.Witnesses[0].URL != "" {
		t.Fatalf("trust policy:\n%s", text)
	}
	for _, action := range []string{"demo.echo", "aws.ec2.terminate_instances"} {
		exec.Command(ztBin, "decide", "--server", "https://"+addr, "--svid", filepath.Join(devDir, "agent"), "--action", action, "--resource", "i-demo").Run()
	}
	time.Sleep(300 * time.Millisecond) // a checkpoint covering the decisions
	resp, err := http.Get(base + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v, err := trust.VerifyCheckpoint(cp, policy.VerifyOptions{Now: time.Now()}); err != nil || len(v.Cosignatures) != 1 {
		t.Fatalf("the dev checkpoint does not verify with trust.policy: %v\n%s", err, cp)
	}
	audit := exec.Command(buildZtAudit(t), "audit", "--log", base, "--policy", trustFile, "--window", "1000h")
	out, err := audit.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "VALID: every check passed") ||
		!strings.Contains(string(out), "decision.allow 1") || !strings.Contains(string(out), "decision.deny 1") || !strings.Contains(string(out), "witnessed by dev") {
		t.Fatalf("zt-audit audit of the dev log: %v\n%s", err, out)
	}
}
