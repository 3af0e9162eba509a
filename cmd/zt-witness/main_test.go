package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/state"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"
)

var (
	auditBin   string // zt-audit, to verify evidence as an auditor would
	witnessBin string // the normal build
	crashBin   string // built with -tags ztcrash: can SIGKILL itself at a chosen step
)

func TestMain(m *testing.M) {
	// Tessera (in the end-to-end tests) logs through klog.
	klog.SetSlogLogger(slog.New(slog.NewJSONHandler(klogSink, nil)))
	dir, err := os.MkdirTemp("", "zt-witness-bin")
	if err != nil {
		panic(err)
	}
	witnessBin = filepath.Join(dir, "zt-witness")
	crashBin = filepath.Join(dir, "zt-witness-crash")
	auditBin = filepath.Join(dir, "zt-audit")
	for _, b := range []struct{ out, tags, pkg string }{{witnessBin, "", "."}, {crashBin, "ztcrash", "."}, {auditBin, "", "../zt-audit"}} {
		if out, err := exec.Command("go", "build", "-tags", b.tags, "-o", b.out, b.pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build zt-witness: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testLog is a log made by hand: a Merkle tree and a signing key.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	return &testLog{origin: origin, signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
}

// fork is a log with the same key and a tree that shares nothing with l's.
func (l *testLog) fork() *testLog {
	return &testLog{origin: l.origin, signer: l.signer, vkey: l.vkey, tree: testonly.New(rfc6962.DefaultHasher)}
}

func (l *testLog) grow(n int, prefix string) {
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("%s-%d", prefix, l.tree.Size())))
	}
}

func (l *testLog) checkpoint(t testing.TB, size uint64) string {
	t.Helper()
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(l.tree.HashAt(size)))
	n, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(n)
}

func (l *testLog) request(t testing.TB, old, size uint64) string {
	t.Helper()
	body := fmt.Sprintf("old %d\n", old)
	if old > 0 && old < size {
		p, err := l.tree.ConsistencyProof(old, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range p {
			body += base64.StdEncoding.EncodeToString(h) + "\n"
		}
	}
	return body + "\n" + l.checkpoint(t, size)
}

func writeConfig(t testing.TB, path string, logs ...*testLog) {
	t.Helper()
	var parts []string
	for _, l := range logs {
		parts = append(parts, fmt.Sprintf(`{"origin":%q,"verifier_key":%q}`, l.origin, l.vkey))
	}
	if err := os.WriteFile(path, []byte(`{"logs":[`+strings.Join(parts, ",")+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

type witnessProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *devproc.SyncBuffer
	exited chan struct{}
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startWitness starts bin serve with the given files and waits until it
// listens on a port of its choosing.
func startWitness(t testing.TB, bin string, env []string, args ...string) *witnessProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	p := &witnessProc{cmd: cmd, stderr: &devproc.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.exited })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case p.url = <-found:
	case <-p.exited:
		t.Fatalf("zt-witness exited before listening:\n%s", p.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("zt-witness did not start:\n%s", p.stderr)
	}
	return p
}

func (p *witnessProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

type answer struct {
	status int
	body   string
	err    error
}

var client = &http.Client{Timeout: 10 * time.Second}

func (p *witnessProc) post(body string) answer {
	resp, err := client.Post(p.url+"/add-checkpoint", "text/plain", strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), err: err}
}

func (p *witnessProc) latest(t testing.TB, origin string) string {
	t.Helper()
	resp, err := client.Get(p.url + "/" + state.OriginHash(origin) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 404 {
		return ""
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET checkpoint: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func keygen(t testing.TB, dir, name string) (keyFile, vkey string) {
	t.Helper()
	keyFile = filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".key")
	out, err := exec.Command(witnessBin, "keygen", "--name", name, "--out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	return keyFile, strings.TrimSpace(string(out))
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"ed25519", "ml-dsa-44"} {
		keyFile := filepath.Join(dir, alg+".key")
		out, err := exec.Command(witnessBin, "keygen", "--name", "witness.example/w1", "--algorithm", alg, "--out", keyFile).Output()
		if err != nil {
			t.Fatal(err)
		}
		vkey := strings.TrimSpace(string(out))
		c, err := cosigner.Load(keyFile)
		if err != nil || c.VerifierKey != vkey || c.Algorithm != alg {
			t.Fatalf("%s: printed %s, file holds %+v (%v)", alg, vkey, c, err)
		}
		st, _ := os.Stat(keyFile)
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("key mode %v", st.Mode().Perm())
		}
		if err := exec.Command(witnessBin, "keygen", "--name", "witness.example/w1", "--out", keyFile).Run(); err == nil {
			t.Fatal("keygen overwrote a key")
		}
	}
	cmd := exec.Command(witnessBin, "keygen", "--name", "w", "--algorithm", "rsa", "--out", filepath.Join(dir, "x"))
	if msg, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(msg), "unknown cosignature algorithm") {
		t.Fatalf("bad algorithm: exit %d %s", cmd.ProcessState.ExitCode(), msg)
	}
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	keyFile, vkey := keygen(t, dir, "witness.example/w1")
	a, b := newTestLog(t, "a.example/log"), newTestLog(t, "b.example/log")
	a.grow(5, "a")
	b.grow(5, "b")
	cfg := filepath.Join(dir, "witness.json")
	writeConfig(t, cfg, a)
	stateDir := filepath.Join(dir, "state")
	p := startWitness(t, witnessBin, nil, "--config", cfg, "--key", keyFile, "--state", stateDir, "--config-poll", "50ms")

	got := p.post("old 0\n\n" + a.checkpoint(t, 5))
	if got.status != 200 {
		t.Fatalf("add-checkpoint: %d %s", got.status, got.body)
	}
	wv, _ := cosigner.NewVerifier(vkey)
	if _, err := note.Open([]byte(a.checkpoint(t, 5)+got.body), note.VerifierList(wv)); err != nil {
		t.Fatalf("cosignature does not verify with the printed key: %v", err)
	}
	if cp := p.latest(t, a.origin); !strings.HasPrefix(cp, "a.example/log\n5\n") {
		t.Fatalf("GET checkpoint: %q", cp)
	}
	// b is not configured: 404, until the file says so (no restart).
	if got := p.post("old 0\n\n" + b.checkpoint(t, 5)); got.status != 404 {
		t.Fatalf("unconfigured log: %d", got.status)
	}
	writeConfig(t, cfg, a, b)
	deadline := time.Now().Add(10 * time.Second)
	for p.post("old 0\n\n"+b.checkpoint(t, 5)).status != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("config change not picked up:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// An invalid config keeps the one in force, and says so.
	os.WriteFile(cfg, []byte(`{"logs": [`), 0o644)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "config file changed but is invalid") {
		if time.Now().After(deadline) {
			t.Fatalf("invalid config not reported:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := p.post(b.request(t, 5, 5)); got.status != 200 {
		t.Fatalf("after an invalid config: %d %s", got.status, got.body)
	}
	resp, err := client.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ztwitness_add_checkpoint_total{status="200"}`, `ztwitness_add_checkpoint_total{status="404"}`, `ztwitness_cosigned_size{origin="a.example/log"} 5`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// SIGHUP re-reads the file at once (a second witness that would not
	// poll for an hour).
	c := newTestLog(t, "c.example/log")
	c.grow(2, "c")
	hcfg := filepath.Join(dir, "hup.json")
	writeConfig(t, hcfg, a)
	hup := startWitness(t, witnessBin, nil, "--config", hcfg, "--key", keyFile, "--state", filepath.Join(dir, "hup-state"), "--config-poll", "1h")
	if got := hup.post("old 0\n\n" + c.checkpoint(t, 2)); got.status != 404 {
		t.Fatalf("before SIGHUP: %d", got.status)
	}
	writeConfig(t, hcfg, a, c)
	hup.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for hup.post("old 0\n\n"+c.checkpoint(t, 2)).status != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload:\n%s", hup.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// One process per state directory.
	writeConfig(t, cfg, a, b)
	cmd := exec.Command(witnessBin, "serve", "--config", cfg, "--key", keyFile, "--state", stateDir, "--listen", "127.0.0.1:0")
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "another zt-witness") {
		t.Fatalf("second witness on the same state: %v %s", err, msg)
	}
	// SIGTERM: clean exit.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit on SIGTERM")
	}
	if p.cmd.ProcessState.ExitCode() != 0 || !strings.Contains(p.stderr.String(), "zt-witness stopped") {
		t.Fatalf("exit %d:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr)
	}
	// Usage errors are exit 2 and name the missing flag.
	cmd = exec.Command(witnessBin, "serve", "--key", keyFile, "--state", stateDir)
	if msg, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(msg), "--config is required") {
		t.Fatalf("no --config: exit %d %s", cmd.ProcessState.ExitCode(), msg)
	}
}
