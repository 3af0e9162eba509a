package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
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
	"time"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/witness/cosigner"
)

// `ztlog dev` is witnessed by its local witness: the published checkpoint
// carries a cosignature that verifies with the policy it wrote, and /readyz
// reports the witness.
func TestDevIsWitnessed(t *testing.T) {
	dir := t.TempDir()
	addr := devproc.FreeAddr(t)
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
	trust, err := trustpolicy.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	v, err := trust.VerifyCheckpoint(cp, trustpolicy.VerifyOptions{})
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
	dead := "http://" + devproc.FreeAddr(t) + "/"
	policyFile := filepath.Join(dir, "trust.policy")
	os.WriteFile(policyFile, []byte(fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", vkey, wvkey, dead)), 0o644)

	// Fail closed: a new log cannot even publish its first checkpoint.
	cmd := exec.Command(ztlogBin, "serve", "--key", keyFile, "--data-dir", filepath.Join(dir, "data"), "--listen", devproc.FreeAddr(t),
		"--witness-policy", policyFile, "--witness-timeout", "500ms")
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(msg), "witness policy was not satisfied") {
		t.Fatalf("fail-closed start without witnesses: exit %d\n%s", cmd.ProcessState.ExitCode(), msg)
	}

	// Fail open: it starts, publishes, and says so loudly.
	addr := devproc.FreeAddr(t)
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

var (
	witnessBinOnce sync.Once
	witnessBinPath string
	witnessBinErr  error
)

// witnessBinary builds zt-witness once for the tests that run it.
func witnessBinary(t *testing.T) string {
	t.Helper()
	witnessBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zt-witness-bin")
		if err != nil {
			witnessBinErr = err
			return
		}
		witnessBinPath = filepath.Join(dir, "zt-witness")
		if out, err := exec.Command("go", "build", "-o", witnessBinPath, "../zt-witness").CombinedOutput(); err != nil {
			witnessBinErr = fmt.Errorf("build zt-witness: %v\n%s", err, out)
		}
	})
	if witnessBinErr != nil {
		t.Fatal(witnessBinErr)
	}
	return witnessBinPath
}

type realWitness struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func startRealWitness(t *testing.T, dir, name, cfg string) (*realWitness, string) {
	t.Helper()
	keyFile := filepath.Join(dir, name+".key")
	out, err := exec.Command(witnessBinary(t), "keygen", "--name", "witness.example/"+name, "--out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(out))
	cmd := exec.Command(witnessBinary(t), "serve", "--config", cfg, "--key", keyFile, "--state", filepath.Join(dir, name+"-state"), "--listen", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &realWitness{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-w.done })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok {
			w.url = u + "/"
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if w.url == "" {
		t.Fatalf("zt-witness %s did not start", name)
	}
	return w, vkey
}

// The done-when of the witness issue, with the real binaries: `ztlog dev`
// under a two-of-three policy over three zt-witness processes publishes
// checkpoints carrying at least two verifying cosignatures; with two
// witnesses down it publishes nothing new and says why.
func TestDevTwoOfThreeRealWitnesses(t *testing.T) {
	dir := t.TempDir()
	devDir := filepath.Join(dir, "dev")
	os.MkdirAll(devDir, 0o700)
	out, err := exec.Command(ztlogBin, "keygen", "--origin", devOrigin, "--out", filepath.Join(devDir, "log.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(out))
	wdir := t.TempDir()
	wcfg := filepath.Join(wdir, "witness.json")
	os.WriteFile(wcfg, []byte(fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, devOrigin, vkey)), 0o644)
	text := "log " + vkey + "\n"
	var ws []*realWitness
	for _, n := range []string{"w1", "w2", "w3"} {
		w, wvkey := startRealWitness(t, wdir, n, wcfg)
		ws = append(ws, w)
		text += fmt.Sprintf("witness %s %s %s\n", n, wvkey, w.url)
	}
	text += "group witnesses 2 w1 w2 w3\nquorum witnesses\n"
	policyFile := filepath.Join(wdir, "trust.policy")
	os.WriteFile(policyFile, []byte(text), 0o644)
	trust, err := trustpolicy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}

	addr := devproc.FreeAddr(t)
	logs := &lockedBuffer{}
	p := exec.Command(ztlogBin, "dev", "--data-dir", dir, "--listen", addr, "--checkpoint-interval", "100ms",
		"--witness-policy", policyFile, "--witness-timeout", "1s", "--checkpoint-wait", "300ms")
	p.Stdout, p.Stderr = io.Discard, logs
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	base := "http://" + addr
	waitReady(t, base)

	jwt, _ := os.ReadFile(filepath.Join(devDir, "agent.jwt"))
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(devDir, "bundle.pem"))
	pool.AppendCertsFromPEM(caPEM)
	js := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	decide := func() uint64 {
		t.Helper()
		req, _ := http.NewRequest("POST", "https://"+addr+"/actions", strings.NewReader(`{"actor":"`+devAgentID.String()+`","action":"demo.echo","resource":"demo://w"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(jwt)))
		resp, err := js.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var lr api.LegacyActionResponse
		json.NewDecoder(resp.Body).Decode(&lr)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/actions: %d %+v", resp.StatusCode, lr)
		}
		return lr.Audit.Index
	}
	checkpoint := func() *trustpolicy.Checkpoint {
		t.Helper()
		resp, err := http.Get(base + "/log/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cp, err := trust.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{Now: time.Now()})
		if err != nil {
			t.Fatalf("published checkpoint does not meet the 2-of-3 policy: %v\n%s", err, raw)
		}
		return cp
	}

	var last uint64
	for i := 0; i < 3; i++ {
		last = decide()
	}
	deadline := time.Now().Add(15 * time.Second)
	for checkpoint().Size <= last {
		if time.Now().After(deadline) {
			t.Fatal("no witnessed checkpoint covers the decisions")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cp := checkpoint(); len(cp.Cosignatures) < 2 {
		t.Fatalf("%d cosignatures", len(cp.Cosignatures))
	}

	// Two witnesses down.
	for _, w := range ws[1:] {
		w.cmd.Process.Kill()
		<-w.done
	}
	before := checkpoint().Size
	last = decide()
	last = decide()
	time.Sleep(2 * time.Second) // many checkpoint intervals
	if now := checkpoint().Size; now != before || now > last {
		t.Fatalf("published size moved from %d to %d with two of three witnesses down", before, now)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`group \"witnesses\" has 1 of the 2 it needs (w1)`, "w2: unreachable", "w3: unreachable"} {
		if resp.StatusCode != 503 || !strings.Contains(string(body), want) {
			t.Errorf("readyz %d lacks %q:\n%s", resp.StatusCode, want, body)
		}
	}
	for _, want := range []string{`"msg":"witness not cosigning","witness":"w2"`, `"msg":"witness not cosigning","witness":"w3"`, "witness policy was not satisfied"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("ztlog's logs lack %q", want)
		}
	}
}
