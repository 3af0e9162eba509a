package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/verifier/splitview"
)

var (
	auditBinOnce sync.Once
	auditBinPath string
	auditBinErr  error
)

// auditBinary builds zt-audit once for the tests that run it.
func auditBinary(t testing.TB) string {
	t.Helper()
	auditBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zt-audit-bin")
		if err != nil {
			auditBinErr = err
			return
		}
		auditBinPath = filepath.Join(dir, "zt-audit")
		if out, err := exec.Command("go", "build", "-o", auditBinPath, ".").CombinedOutput(); err != nil {
			auditBinErr = fmt.Errorf("build zt-audit: %v\n%s", err, out)
		}
	})
	if auditBinErr != nil {
		t.Fatal(auditBinErr)
	}
	return auditBinPath
}

const vectors = "../../testdata/splitview"

// The public key of the golden vectors' TEST log key.
const vectorLogKey = "example.com/forked-log+8f2579e6+AfmhvOKZzXjmfWqiPHhvTbsbqF3IU/C/eaED34BwkF7/"

func runAudit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(auditBinary(t), args...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

func TestVerifySplitViewEvidence(t *testing.T) {
	dir := t.TempDir()
	trusted := filepath.Join(dir, "trust.policy")
	os.WriteFile(trusted, []byte("log "+vectorLogKey+"\nquorum none\n"), 0o644)
	other := filepath.Join(dir, "other.policy")
	_, otherKey, _ := note.GenerateKey(rand.Reader, "example.com/other-log")
	os.WriteFile(other, []byte("log "+otherKey+"\nquorum none\n"), 0o644)

	for _, tc := range []struct {
		file, policy string
		exit         int
		want         string
	}{
		{"same-size.json", trusted, 0, "VERIFIED: the log misbehaved"},
		{"inconsistent.json", trusted, 0, "the tree of size 8 has root"},
		{"inconsistent-power-of-two.json", "", 0, "keys from the evidence file itself"},
		{"unproven.json", trusted, 1, "NOT CONCLUSIVE"},
		{"same-size.json", other, 1, `names no log "example.com/forked-log"`},
	} {
		args := []string{"verify", filepath.Join(vectors, tc.file)}
		if tc.policy != "" {
			args = append(args, "--policy", tc.policy)
		}
		out, code := runAudit(t, args...)
		if code != tc.exit || !strings.Contains(out, tc.want) {
			t.Errorf("%s (policy %q): exit %d, want %d; output:\n%s", tc.file, tc.policy, code, tc.exit, out)
		}
	}

	// A tampered file fails, naming why.
	raw, _ := os.ReadFile(filepath.Join(vectors, "inconsistent.json"))
	e, _ := splitview.Parse(raw)
	e.Proof.Hashes[0] = e.Proof.Hashes[1]
	bad, _ := e.Marshal()
	badFile := filepath.Join(dir, "tampered.json")
	os.WriteFile(badFile, bad, 0o644)
	if out, code := runAudit(t, "verify", badFile, "--policy", trusted); code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "does not show") {
		t.Errorf("tampered evidence: exit %d\n%s", code, out)
	}

	// --json for machines.
	out, code := runAudit(t, "verify", "--json", filepath.Join(vectors, "same-size.json"), "--policy", trusted)
	var v struct {
		Valid, Conclusive bool
		Kind              string
		Sizes             []uint64
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &v); err != nil || code != 0 || !v.Valid || !v.Conclusive || v.Kind != "same-size" || v.Sizes[0] != 5 {
		t.Errorf("--json: exit %d %+v %v\n%s", code, v, err, out)
	}

	// Not evidence: unusable input.
	notEvidence := filepath.Join(dir, "x.json")
	os.WriteFile(notEvidence, []byte(`{"hello":"world"}`), 0o644)
	if out, code := runAudit(t, "verify", notEvidence); code != 2 || !strings.Contains(out, "not a file zt-audit verify knows") {
		t.Errorf("not evidence: exit %d\n%s", code, out)
	}
}
