package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/verifier/bundle"
)

// buildBin builds a command of this module into dir.
func buildBin(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestDevBundleEndToEnd is issue 6's done-when through the real binaries:
// `ztlog dev`, `zt run` of demo.echo (attested agent, sandboxed broker),
// then `zt-audit bundle` of that decision carries the attestation, the
// linked result with the broker's statement and the SPIFFE roots, and
// verifies offline with the dev trust policy and the pinned SPIFFE bundle;
// a flipped byte in the attestation or the statement fails naming the
// check; and `zt-audit audit` of the dev log with the SPIFFE bundle checks
// every entry signature.
func TestDevBundleEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap (bwrap) is not installed: the dev broker's sandbox needs it")
	}
	bins := t.TempDir()
	ztlogBin, ztBin, audit := buildBin(t, bins, "../ztlog"), buildBin(t, bins, "../zt"), auditBinary(t)

	d := devproc.Start(t, ztlogBin, t.TempDir())
	data, addr, stderr := d.Dir, d.Addr, d.Stderr
	devDir := filepath.Join(data, "dev")
	policy, spiffe := filepath.Join(devDir, "trust.policy"), filepath.Join(devDir, "bundle.pem")

	report := filepath.Join(t.TempDir(), "report.json")
	run := exec.Command(ztBin, "run", "--server", "https://"+addr, "--svid", filepath.Join(devDir, "agent"), "--model", "anthropic/claude-sonnet-4",
		"--report", report, "--action", "demo.echo", "--resource", "demo://hello", "--", "echo", "hi")
	if o, err := run.CombinedOutput(); err != nil {
		t.Fatalf("zt run: %v\n%s\nztlog dev: %s", err, o, stderr.String())
	}
	var rep struct {
		DecisionIndex uint64  `json:"decision_index"`
		ResultIndex   *uint64 `json:"result_index"`
	}
	raw, _ := os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil || rep.ResultIndex == nil {
		t.Fatalf("zt run report: %v %s", err, raw)
	}

	// The bundle, once a checkpoint covers the result.
	bfile := filepath.Join(t.TempDir(), "action.bundle")
	var b *bundle.Bundle
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		o, err := exec.Command(audit, "bundle", "--log", filepath.Join(data, "log"), "--policy", policy, "--index", strconv.FormatUint(rep.DecisionIndex, 10),
			"--spiffe-bundle", spiffe, "--out", bfile).CombinedOutput()
		if err == nil {
			raw, _ := os.ReadFile(bfile)
			if b, err = bundle.Parse(raw); err != nil {
				t.Fatal(err)
			}
			if b.Result != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("zt-audit bundle: %v\n%s", err, o)
		}
	}
	if b.Result.Index != *rep.ResultIndex || len(b.SPIFFE) != 1 || b.SPIFFE[0].TrustDomain != "dev.ztlog.local" {
		t.Fatalf("bundle: result %d (want %d), spiffe %v", b.Result.Index, *rep.ResultIndex, b.SPIFFE)
	}

	verify := func(file string, extra ...string) (string, int) {
		cmd := exec.Command(audit, append([]string{"verify", file, "--policy", policy}, extra...)...)
		o, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(o), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(o), 0
	}
	o, code := verify(bfile, "--spiffe-bundle", spiffe)
	if code != 0 || !strings.Contains(o, "signed by spiffe://dev.ztlog.local/agent/demo") || !strings.Contains(o, "signed by spiffe://dev.ztlog.local/broker/demo") ||
		!strings.Contains(o, "VALID: every check passed") {
		t.Fatalf("verify with pinned roots: exit %d\n%s", code, o)
	}
	t.Logf("zt-audit verify %s --policy trust.policy --spiffe-bundle bundle.pem:\n%s", filepath.Base(bfile), o)
	o, code = verify(bfile, "--json", "--spiffe-bundle", spiffe)
	var jr bundle.Report
	if err := json.Unmarshal([]byte(o[:strings.LastIndex(o, "}")+1]), &jr); code != 0 || err != nil || jr.Attestation == nil || jr.Statement == nil ||
		jr.Attestation.Signer != "spiffe://dev.ztlog.local/agent/demo" || jr.Statement.Signer != "spiffe://dev.ztlog.local/broker/demo" || !jr.SPIFFE.Pinned {
		t.Fatalf("verify --json: exit %d, %v\n%s", code, err, o)
	}
	// The server's bundle: the result and the SPIFFE roots come without asking.
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/bundles/%d", addr, rep.DecisionIndex))
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sb, err := bundle.Parse(served)
	if err != nil || sb.Result == nil || sb.Result.Index != *rep.ResultIndex || len(sb.SPIFFE) != 1 {
		t.Fatalf("GET /v1/bundles/%d: %v\n%s", rep.DecisionIndex, err, served)
	}
	sfile := filepath.Join(t.TempDir(), "served.bundle")
	os.WriteFile(sfile, served, 0o644)
	if o, code := verify(sfile, "--spiffe-bundle", spiffe); code != 0 || !strings.Contains(o, "VALID: every check passed") {
		t.Fatalf("verify the served bundle: exit %d\n%s", code, o)
	}

	// Unpinned: valid for what was checked, the signers not proven.
	if o, code = verify(bfile); code != 0 || !strings.Contains(o, "NOT pinned") || !strings.Contains(o, "NOT VERIFIED") {
		t.Fatalf("verify without pinned roots: exit %d\n%s", code, o)
	}

	// A flipped byte in the attestation, and in the statement: re-encoded
	// so that the bundle parses, the entry no longer is the committed one.
	for _, c := range []struct {
		name, want string
		leaf       *[]byte
	}{{"attestation", "decision.inclusion", &b.Decision.Leaf}, {"statement", "result.inclusion", &b.Result.Leaf}} {
		orig := *c.leaf
		i := bytes.Index(orig, []byte(`"sig":"`)) + 10
		flipped := append([]byte(nil), orig...)
		flipped[i] ^= 0x01
		*c.leaf = flipped
		enc, _ := bundle.Marshal(b)
		*c.leaf = orig
		f := filepath.Join(t.TempDir(), c.name+".bundle")
		os.WriteFile(f, enc, 0o644)
		if o, code := verify(f, "--spiffe-bundle", spiffe); code != 1 || !strings.Contains(o, "INVALID: "+c.want) {
			t.Fatalf("flipped %s: exit %d\n%s", c.name, code, o)
		}
	}

	// The whole dev log, entry signatures included.
	cmd := exec.Command(audit, "audit", "--log", filepath.Join(data, "log"), "--policy", policy, "--spiffe-bundle", spiffe, "--progress", "never", "--json")
	o2, err := cmd.Output()
	var ar struct {
		Valid           bool   `json:"valid"`
		EntrySignatures string `json:"entry_signatures"`
		Checks          []struct {
			ID      string `json:"id"`
			Checked uint64 `json:"checked"`
			Failed  uint64 `json:"failed"`
		} `json:"checks"`
	}
	if err != nil || json.Unmarshal(o2, &ar) != nil || !ar.Valid || !strings.HasPrefix(ar.EntrySignatures, "checked") {
		t.Fatalf("audit: %v\n%s", err, o2)
	}
	signed := false
	for _, c := range ar.Checks {
		if c.ID == "signature.attestation" && c.Checked >= 2 && c.Failed == 0 {
			signed = true
		}
	}
	if !signed {
		t.Fatalf("audit checked no attestation and statement:\n%s", o2)
	}
	// The monitor checks them too: one poll, no alert.
	mon := exec.Command(audit, "monitor", "--log", filepath.Join(data, "log"), "--policy", policy, "--state", t.TempDir(), "--spiffe-bundle", spiffe, "--once", "--window", "1000h")
	if o, err := mon.CombinedOutput(); err != nil || bytes.Contains(o, []byte(`"severity":"fail"`)) {
		t.Fatalf("monitor --once: %v\n%s", err, o)
	}
	// Without the SPIFFE bundle the summary says signatures were not checked.
	o3, _ := exec.Command(audit, "audit", "--log", filepath.Join(data, "log"), "--policy", policy, "--progress", "never").Output()
	if !strings.Contains(string(o3), "NOT checked") {
		t.Fatalf("audit without --spiffe-bundle:\n%s", o3)
	}
}
