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
	"sync"
	"testing"

	"github.com/zt-infra/ztlog/verifier/policy"
	"github.com/zt-infra/ztlog/witness/cosigner"
)

// `ztlog dev` is witnessed by its local witness: the published checkpoint
// carries a cosignature that verifies with the policy it wrote, and /readyz
// reports the witness.
func TestDevIsWitnessed(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := exec.Command(ztlogBin, "dev", "--data-dir", dir, "--listen", addr)
	p.Stdout, p.Stderr = io.Discard, io.Discard
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	base := "http://" + addr
	waitReady(t, base)
	text, err := os.ReadFile(filepath.Join(dir, "dev", "witness.policy"))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := policy.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	v, err := trust.VerifyCheckpoint(cp, policy.VerifyOptions{})
	if err != nil || len(v.Cosignatures) != 1 {
		t.Fatalf("dev checkpoint does not meet the dev witness policy: %v\n%s", err, cp)
	}
	resp, _ = http.Get(base + "/.well-known/ztlog")
	var wk struct {
		WitnessPolicy string `json:"witness_policy"`
	}
	json.NewDecoder(resp.Body).Decode(&wk)
	resp.Body.Close()
	if wk.WitnessPolicy != string(text) {
		t.Fatalf("/.well-known/ztlog witness_policy %q, want the dev policy", wk.WitnessPolicy)
	}
	resp, _ = http.Get(base + "/readyz")
	var ready struct {
		Checks  map[string]string
		Details struct {
			Witnesses struct {
				Quorum    string
				Met       bool
				Witnesses []struct{ Name, Outcome string }
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	w := ready.Details.Witnesses
	if ready.Checks["witnesses"] != "ok" || !w.Met || w.Quorum != "dev" || len(w.Witnesses) != 1 || w.Witnesses[0].Outcome != "cosigned" {
		t.Fatalf("readyz: %+v", ready)
	}
}

func TestServeWitnessPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "log.key")
	out, err := exec.Command(ztlogBin, "keygen", "--origin", "example.com/witnessed", "--out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(out))
	_, wvkey, _ := cosigner.Generate("witness.example/w1", cosigner.Ed25519)
	// A witness nobody answers at.
	dead := "http://" + freeAddr(t) + "/"
	policyFile := filepath.Join(dir, "trust.policy")
	os.WriteFile(policyFile, []byte(fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", vkey, wvkey, dead)), 0o644)

	// Fail closed: a new log cannot even publish its first checkpoint.
	cmd := exec.Command(ztlogBin, "serve", "--key", keyFile, "--data-dir", filepath.Join(dir, "data"), "--listen", freeAddr(t),
		"--witness-policy", policyFile, "--witness-timeout", "500ms")
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(msg), "witness policy was not satisfied") {
		t.Fatalf("fail-closed start without witnesses: exit %d\n%s", cmd.ProcessState.ExitCode(), msg)
	}

	// Fail open: it starts, publishes, and says so loudly.
	addr := freeAddr(t)
	logs := &lockedBuffer{}
	p := exec.Command(ztlogBin, "serve", "--key", keyFile, "--data-dir", filepath.Join(dir, "data2"), "--listen", addr,
		"--witness-policy", policyFile, "--witness-timeout", "500ms", "--witness-fail-open")
	p.Stderr = logs
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	waitReady(t, "http://"+addr)
	if !strings.Contains(logs.String(), "WITNESS FAIL-OPEN") {
		t.Fatalf("fail-open not announced:\n%s", logs)
	}
	resp, _ := http.Get("http://" + addr + "/readyz")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"fail_open":true`) || !strings.Contains(string(body), `"met":false`) {
		t.Fatalf("readyz under fail-open: %s", body)
	}

	// A policy that does not parse, or names no URL, is a usage error.
	for name, text := range map[string]string{
		"syntax": "quorum\n",
		"no url": fmt.Sprintf("witness w1 %s\nquorum w1\n", wvkey),
	} {
		os.WriteFile(policyFile, []byte(text), 0o644)
		cmd := exec.Command(ztlogBin, "serve", "--key", keyFile, "--data-dir", filepath.Join(dir, "data3"), "--witness-policy", policyFile)
		msg, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(msg), "--witness-policy") {
			t.Errorf("%s: exit %d\n%s", name, cmd.ProcessState.ExitCode(), msg)
		}
	}
	cmd = exec.Command(ztlogBin, "serve", "--key", keyFile, "--data-dir", filepath.Join(dir, "data3"), "--witness-fail-open")
	if msg, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 {
		t.Errorf("--witness-fail-open without a policy: exit %d %s", cmd.ProcessState.ExitCode(), msg)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
