package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

var ztlogBin, ztBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ztlog-bin")
	if err != nil {
		panic(err)
	}
	ztlogBin = filepath.Join(dir, "ztlog")
	ztBin = filepath.Join(dir, "zt")
	out, err := exec.Command("go", "build", "-o", ztlogBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build ztlog: %v\n%s", err, out)
		os.Exit(1)
	}
	out, err = exec.Command("go", "build", "-o", ztBin, "../zt").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build zt: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running ztlog; its output is read while it runs, so the
// buffers are safe for concurrent use.
type proc struct {
	cmd    *exec.Cmd
	stdout *devproc.SyncBuffer
	stderr *devproc.SyncBuffer
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(ztlogBin, args...), stdout: &devproc.SyncBuffer{}, stderr: &devproc.SyncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", base)
}

func TestKeygenServeAndRestart(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "log.key")
	out, err := exec.Command(ztlogBin, "keygen", "--origin", "example.com/test", "--out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(out))
	if !strings.HasPrefix(vkey, "example.com/test+") {
		t.Fatalf("keygen printed %q", vkey)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode().Perm(), err)
	}
	// Never overwritten.
	if err := exec.Command(ztlogBin, "keygen", "--origin", "example.com/test", "--out", keyFile).Run(); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}

	addr := devproc.FreeAddr(t)
	data := filepath.Join(dir, "data")
	p := start(t, "serve", "--read-only", "--key", keyFile, "--data-dir", data, "--listen", addr)
	base := "http://" + addr
	waitReady(t, base)

	var wk struct{ Origin, VerifierKey string }
	resp, err := http.Get(base + "/.well-known/ztlog")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&struct {
		Origin      *string `json:"origin"`
		VerifierKey *string `json:"verifier_key"`
	}{&wk.Origin, &wk.VerifierKey})
	resp.Body.Close()
	if wk.Origin != "example.com/test" || wk.VerifierKey != vkey {
		t.Fatalf("well-known: %+v", wk)
	}
	// The checkpoint verifies with the printed verifier key.
	v, _ := note.NewVerifier(vkey)
	f, _ := client.NewHTTPFetcher(mustURL(base+"/log/"), nil)
	if _, _, _, err := client.FetchCheckpoint(t.Context(), f.ReadCheckpoint, v, "example.com/test"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"ztlog_log_published_size", "ztlog_log_checkpoint_age_seconds", "ztlog_log_sequencing_seconds"} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// SIGTERM: a clean exit.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve did not exit cleanly on SIGTERM: %v\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"log closed"`) {
		t.Fatalf("no graceful close in the logs:\n%s", p.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}

	// Another key on the same data directory is refused, with the reason.
	other := filepath.Join(dir, "other.key")
	if err := exec.Command(ztlogBin, "keygen", "--origin", "example.com/test", "--out", other).Run(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ztlogBin, "serve", "--read-only", "--key", other, "--data-dir", data, "--listen", devproc.FreeAddr(t))
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "not signed by the key") {
		t.Fatalf("serve with another key: %v\n%s", err, msg)
	}
	// An origin that does not match the key is a usage error (exit 2).
	cmd = exec.Command(ztlogBin, "serve", "--read-only", "--key", keyFile, "--origin", "example.com/other", "--data-dir", data)
	msg, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(msg), "does not match the key") {
		t.Fatalf("mismatched --origin: exit %d\n%s", cmd.ProcessState.ExitCode(), msg)
	}
	// A commit delay out of range is refused, naming the range.
	cmd = exec.Command(ztlogBin, "serve", "--read-only", "--key", keyFile, "--data-dir", data, "--listen", devproc.FreeAddr(t), "--commit-delay", "1s")
	msg, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(msg), "commit delay 1s out of range (0 to 100ms)") {
		t.Fatalf("--commit-delay 1s: exit %d\n%s", cmd.ProcessState.ExitCode(), msg)
	}
	// The environment and a config file supply flags too (a commit delay
	// among them).
	cfg := filepath.Join(dir, "cfg.json")
	addr2 := devproc.FreeAddr(t)
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"listen":%q,"data-dir":%q,"commit-delay":"2ms","commit-siblings":4}`, addr2, data)), 0o644)
	c := exec.Command(ztlogBin, "serve", "--read-only", "--config", cfg)
	c.Env = append(os.Environ(), "ZTLOG_KEY="+keyFile)
	logs := &devproc.SyncBuffer{}
	c.Stderr = logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	waitReady(t, "http://"+addr2)
	if !strings.Contains(logs.String(), `"commit_delay":"2ms","commit_siblings":4`) {
		t.Fatalf("the log did not open with the configured commit delay:\n%s", logs)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestDevPrintsNextSteps(t *testing.T) {
	dir := t.TempDir()
	addr := devproc.FreeAddr(t)
	p := exec.Command(ztlogBin, "dev", "--data-dir", dir, "--listen", addr)
	out, _ := p.StdoutPipe()
	p.Stderr = io.Discard
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	sc := bufio.NewScanner(out)
	var banner []string
	for sc.Scan() {
		banner = append(banner, sc.Text())
		if strings.HasPrefix(sc.Text(), "Stop with") {
			break
		}
	}
	text := strings.Join(banner, "\n")
	if !strings.Contains(text, "curl http://"+addr+"/log/checkpoint") || !strings.Contains(text, "verifier key  localhost/ztlog-dev+") {
		t.Fatalf("dev banner:\n%s", text)
	}
	waitReady(t, "http://"+addr)
	st, err := os.Stat(filepath.Join(dir, "dev", "log.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("dev key: %v %v", st, err)
	}
}
