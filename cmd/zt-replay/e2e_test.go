package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/replay"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

var replayBin, ztlogBin, ztBin, auditBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zt-replay-bin")
	if err != nil {
		panic(err)
	}
	replayBin, ztlogBin, ztBin, auditBin = filepath.Join(dir, "zt-replay"), filepath.Join(dir, "ztlog"), filepath.Join(dir, "zt"), filepath.Join(dir, "zt-audit")
	for _, b := range []struct{ out, pkg string }{{replayBin, "."}, {ztlogBin, "../ztlog"}, {ztBin, "../zt"}, {auditBin, "../zt-audit"}} {
		if out, err := exec.Command("go", "build", "-tags", "ztlog_noaws,ztlog_nogcp", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs zt-replay and returns its stdout, stderr and exit status.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runBin(t, replayBin, nil, args...)
}

func decide(t *testing.T, d *devproc.Dev, action string, extra ...string) api.ActionResponse {
	t.Helper()
	cmd := exec.Command(ztBin, append([]string{"decide", "--server", d.URL(), "--svid", d.DevFile("agent"), "--action", action, "--resource", "r", "--json"}, extra...)...)
	out, _ := cmd.Output()
	var ar api.ActionResponse
	if err := json.Unmarshal(out, &ar); err != nil || ar.Decision == "" {
		t.Fatalf("zt decide %s: %s", action, out)
	}
	return ar
}

// waitCovered waits until the published checkpoint covers index.
func waitCovered(t *testing.T, d *devproc.Dev, index uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + d.Addr + "/log/checkpoint")
		if err == nil {
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			resp.Body.Close()
			var size uint64
			if lines := strings.Split(buf.String(), "\n"); len(lines) > 1 {
				fmt.Sscan(lines[1], &size)
			}
			if size > index {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no checkpoint covers index %d", index)
}

// TestReplayAgreesOnADevLog: on a real `ztlog dev` whose policy changes
// once, every decision replays the same, one decision replays by index,
// the policy is served by hash, policy-hash gives the committed hash and
// digest, and files that are not the committed ones are refused.
func TestReplayAgreesOnADevLog(t *testing.T) {
	dir := t.TempDir()
	d := devproc.Start(t, ztlogBin, dir, "--decision-timeout", "15s")
	policyDir := filepath.Join(dir, "dev", "policy", "opa")
	allow := decide(t, d, "demo.echo")
	decide(t, d, "aws.ec2.terminate_instances")
	decide(t, d, "demo.echo", "--args", `{"cmd":"export AWS_ACCESS_KEY_ID=AKIAZ7QW3RTY5UIOP2LK"}`)
	// A second policy version: demo.* no longer allowed.
	data := filepath.Join(policyDir, "data.json")
	orig, _ := os.ReadFile(data)
	os.WriteFile(data, bytes.Replace(orig, []byte(`"demo.*"`), []byte(`"demo.echo.only"`), 1), 0o644)
	var last api.ActionResponse
	deadline := time.Now().Add(15 * time.Second)
	for last = decide(t, d, "demo.echo"); last.Decision != "deny" && time.Now().Before(deadline); last = decide(t, d, "demo.echo") {
		time.Sleep(100 * time.Millisecond)
	}
	if last.Decision != "deny" {
		t.Fatalf("the policy edit never came into force: %+v", last)
	}
	waitCovered(t, d, last.Log.Index)
	url := "http://" + d.Addr

	out, stderr, code := run(t, "log", "--log", url, "--json")
	if code != 0 {
		t.Fatalf("zt-replay log: exit %d\n%s%s", code, out, stderr)
	}
	var rep struct {
		Summary replay.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Decisions < 5 {
		t.Errorf("%d decisions replayed, want at least 5", rep.Summary.Decisions)
	}
	if rep.Summary.Same != rep.Summary.Decisions {
		t.Errorf("%d of %d decisions replayed the same (gate %d, different %d)", rep.Summary.Same, rep.Summary.Decisions, rep.Summary.Gate, rep.Summary.Different)
	}
	t.Logf("replayed %d decisions at %.0f decisions/s", rep.Summary.Decisions, rep.Summary.PerSec)

	out, stderr, code = run(t, "decision", "--log", url, "--index", fmt.Sprint(allow.Log.Index))
	if code != 0 {
		t.Fatalf("zt-replay decision %d: exit %d\n%s%s", allow.Log.Index, code, out, stderr)
	}
	if !strings.Contains(out, "verdict    SAME") {
		t.Errorf("decision output does not say SAME:\n%s", out)
	}
	if !strings.Contains(out, "argument values were never committed") {
		t.Errorf("decision output does not say what the policy saw:\n%s", out)
	}

	// The policy in force now, as the auditor computes it from its files.
	var st pdp.Status
	resp, err := http.Get(url + "/v1/policy")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	out, _, code = run(t, "policy-hash", policyDir, "--json")
	var ph PolicyHash
	if err := json.Unmarshal([]byte(out), &ph); err != nil || code != 0 {
		t.Fatalf("policy-hash: exit %d: %s", code, out)
	}
	if ph.Hash != st.Hash {
		t.Errorf("policy-hash %s, the service's %s", ph.Hash, st.Hash)
	}
	if ph.SourceDigest != st.SourceDigest {
		t.Errorf("policy-hash source digest %s, the service's %s", ph.SourceDigest, st.SourceDigest)
	}
	resp, err = http.Get(url + "/v1/policies/" + st.Hash)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/policies/%s: %d", st.Hash, resp.StatusCode)
	}

	// The edited files are not the ones the first decision was made under.
	out, stderr, code = run(t, "decision", "--log", url, "--index", fmt.Sprint(allow.Log.Index), "--policy-dir", policyDir)
	if code != 1 {
		t.Errorf("replay with files that are not the committed ones: exit %d, want 1\n%s%s", code, out, stderr)
	}
	if !strings.Contains(stderr, st.SourceDigest) {
		t.Errorf("the refusal does not name the given files' digest %s:\n%s", st.SourceDigest, stderr)
	}
	// Restored, they are.
	os.WriteFile(data, orig, 0o644)
	out, stderr, code = run(t, "decision", "--log", url, "--index", fmt.Sprint(allow.Log.Index), "--policy-dir", policyDir)
	if code != 0 {
		t.Errorf("replay with the committed files: exit %d\n%s%s", code, out, stderr)
	}
}
