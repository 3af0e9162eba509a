package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/witness/cosigner"
)

func keygen(t *testing.T, dir, origin string) (keyFile, vkey string) {
	t.Helper()
	keyFile = filepath.Join(dir, "log.key")
	out, err := exec.Command(ztlogBin, "keygen", "--origin", origin, "--out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	return keyFile, strings.TrimSpace(string(out))
}

// TestServeWithoutIdentityRefuses: `ztlog serve --key --data-dir --listen`,
// as an operator first types it, used to start without the decision API
// and say nothing (POST /v1/actions a 404). It refuses now, naming what to
// give, unless --read-only says that is what is wanted; and it logs which
// APIs it serves (issue 18 finding 8).
func TestServeWithoutIdentityRefuses(t *testing.T) {
	dir := t.TempDir()
	keyFile, _ := keygen(t, dir, "example.com/operator")
	data := filepath.Join(dir, "data")
	cmd := exec.Command(ztlogBin, "serve", "--key", keyFile, "--data-dir", data, "--listen", devproc.FreeAddr(t))
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Errorf("serve without an identity source: exit %d, want 2 (usage)\n%s", code, out)
	}
	for _, want := range []string{"no identity source", "--svid-cert", "--workload-api", "--read-only"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not mention %q:\n%s", want, out)
		}
	}
	addr := devproc.FreeAddr(t)
	p := start(t, "serve", "--read-only", "--key", keyFile, "--data-dir", data, "--listen", addr)
	waitReady(t, "http://"+addr)
	resp, err := http.Post("http://"+addr+"/v1/actions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("--read-only: POST /v1/actions %d, want 404", resp.StatusCode)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"APIs served","decision":false`) {
		t.Errorf("--read-only does not log which APIs it serves:\n%s", p.stderr.String())
	}
}

// TestNewLogWithQuorumDownExitsWithWitnessError: a new log whose witnesses
// are down exits with a witness error, not a "storage error", on the first
// start and on every start after it (the second start used to run on
// without a checkpoint, logging Tessera's error every 500ms) (issue 18
// finding 9).
func TestNewLogWithQuorumDownExitsWithWitnessError(t *testing.T) {
	dir := t.TempDir()
	keyFile, vkey := keygen(t, dir, "example.com/quorumdown")
	_, wvkey, _ := cosigner.Generate("witness.example/w1", cosigner.Ed25519)
	policy := filepath.Join(dir, "trust.policy")
	os.WriteFile(policy, []byte(fmt.Sprintf("log %s\nwitness w1 %s http://%s/\nquorum w1\n", vkey, wvkey, devproc.FreeAddr(t))), 0o644)
	for i := 1; i <= 2; i++ {
		cmd := exec.Command(ztlogBin, "serve", "--read-only", "--key", keyFile, "--data-dir", filepath.Join(dir, "data"), "--listen", devproc.FreeAddr(t),
			"--witness-policy", policy, "--checkpoint-interval", "100ms", "--witness-timeout", "1s")
		done := make(chan []byte, 1)
		go func() { out, _ := cmd.CombinedOutput(); done <- out }()
		var out []byte
		select {
		case out = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("start %d with the quorum down: still running after 30s", i)
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("start %d: exit %d, want 1", i, code)
		}
		last := lastLine(string(out))
		if !strings.Contains(last, "witness quorum not met") || !strings.Contains(last, "witness policy was not satisfied") {
			t.Errorf("start %d: the error is not a witness error: %s", i, last)
		}
		if strings.Contains(last, "storage error") {
			t.Errorf("start %d: a witness failure called a storage error: %s", i, last)
		}
		if n := strings.Count(string(out), "publishCheckpoint"); n > 2 {
			t.Errorf("start %d: Tessera's publication error logged %d times, want it rate-limited", i, n)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestExistingLogUnderNewWitnessPolicy: a log published without witnesses,
// restarted with --witness-policy, still has an uncosigned checkpoint;
// /readyz says so (it used to say the quorum was met), and once the witness
// cosigns, the checkpoint is republished cosigned at the same size and the
// service is ready (issue 18 finding 9).
func TestExistingLogUnderNewWitnessPolicy(t *testing.T) {
	dir := t.TempDir()
	keyFile, vkey := keygen(t, dir, "example.com/newpolicy")
	data := filepath.Join(dir, "data")
	addr := devproc.FreeAddr(t)
	p := start(t, "serve", "--read-only", "--key", keyFile, "--data-dir", data, "--listen", addr, "--checkpoint-interval", "100ms")
	waitReady(t, "http://"+addr)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()

	wcfg := filepath.Join(dir, "witness.json")
	os.WriteFile(wcfg, []byte(fmt.Sprintf(`{"logs":[{"origin":"example.com/newpolicy","verifier_key":%q}]}`, vkey)), 0o644)
	w, wvkey := startRealWitness(t, dir, "w1", wcfg)
	// First under a policy whose witness is down: not ready, and says why.
	_, deadKey, _ := cosigner.Generate("witness.example/dead", cosigner.Ed25519)
	dead := filepath.Join(dir, "dead.policy")
	os.WriteFile(dead, []byte(fmt.Sprintf("log %s\nwitness d %s http://%s/\nquorum d\n", vkey, deadKey, devproc.FreeAddr(t))), 0o644)
	addr = devproc.FreeAddr(t)
	p = start(t, "serve", "--read-only", "--key", keyFile, "--data-dir", data, "--listen", addr, "--checkpoint-interval", "100ms",
		"--witness-policy", dead, "--witness-timeout", "1s")
	var status int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, body = get(t, "http://"+addr+"/readyz"); status != 0 {
			break
		}
	}
	if status != 503 {
		t.Errorf("existing uncosigned log under a witness policy: /readyz %d, want 503\n%s", status, body)
	}
	if !strings.Contains(body, "not cosigned by the witness policy's quorum") {
		t.Errorf("/readyz does not say the published checkpoint is uncosigned:\n%s", body)
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()

	// Then under a policy whose witness answers: republished cosigned.
	live := filepath.Join(dir, "live.policy")
	os.WriteFile(live, []byte(fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", vkey, wvkey, w.url)), 0o644)
	addr = devproc.FreeAddr(t)
	start(t, "serve", "--read-only", "--key", keyFile, "--data-dir", data, "--listen", addr, "--checkpoint-interval", "100ms",
		"--witness-policy", live, "--witness-timeout", "1s")
	waitReady(t, "http://"+addr)
	_, cp := get(t, "http://"+addr+"/log/checkpoint")
	if !strings.Contains(cp, "— witness.example/w1 ") {
		t.Errorf("ready, but the published checkpoint carries no cosignature of w1:\n%s", cp)
	}
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
