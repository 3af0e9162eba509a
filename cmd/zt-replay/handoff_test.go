package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBin runs the binary at bin with env (nil: this process's)
// and returns its stdout, stderr and exit status.
func runBin(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// TestZtAuditHandsOffToZtReplay: `zt-audit policy-hash` and `zt-audit
// replay` are zt-replay's commands under the auditor's tool, with the same
// output and verdicts, and without zt-replay installed they say so.
func TestZtAuditHandsOffToZtReplay(t *testing.T) {
	want, _, code := run(t, "policy-hash", "../../testdata/policies/opa")
	if code != 0 {
		t.Fatalf("zt-replay policy-hash: exit %d", code)
	}
	got, stderr, code := runBin(t, auditBin, nil, "policy-hash", "../../testdata/policies/opa")
	if code != 0 {
		t.Errorf("zt-audit policy-hash: exit %d\n%s", code, stderr)
	}
	if got != want {
		t.Errorf("zt-audit policy-hash printed %q, zt-replay %q", got, want)
	}

	dir := forgedLog(t)
	if out, stderr, code := runBin(t, auditBin, nil, "replay", "--log", dir, "--index", "2"); code != 0 {
		t.Errorf("zt-audit replay of the honest decision: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code := runBin(t, auditBin, nil, "replay", "--log", dir, "--index=3")
	if code != 1 {
		t.Errorf("zt-audit replay of the forged decision: exit %d, want 1\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "effect: committed allow, replayed deny") {
		t.Errorf("zt-audit replay of the forged decision does not name both effects:\n%s", out)
	}
	out, _, code = runBin(t, auditBin, nil, "replay", "--log", dir)
	if code != 1 {
		t.Errorf("zt-audit replay of the whole log: exit %d, want 1", code)
	}
	if !strings.Contains(out, "different  1") {
		t.Errorf("zt-audit replay of the whole log does not count one differing decision:\n%s", out)
	}

	alone := filepath.Join(t.TempDir(), "zt-audit")
	b, err := os.ReadFile(auditBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runBin(t, alone, []string{"PATH=" + t.TempDir()}, "replay", "--log", dir, "--index", "2")
	if code != 2 {
		t.Errorf("zt-audit replay without zt-replay: exit %d, want 2", code)
	}
	if !strings.Contains(stderr, "needs zt-replay") {
		t.Errorf("zt-audit replay without zt-replay: stderr %q does not name zt-replay", stderr)
	}
}
