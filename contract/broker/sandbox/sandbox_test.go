package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/capability"
)

func TestMain(m *testing.M) {
	Child()
	os.Exit(m.Run())
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// localRunner is a local runner; bwrap chooses bubblewrap ("") or
// CLONE_NEWNET ("none").
func localRunner(t *testing.T, bwrap string) *Runner {
	t.Helper()
	if bwrap == "" {
		if _, err := exec.LookPath("bwrap"); err != nil {
			t.Skip("bubblewrap (bwrap) is not installed; make deps installs it")
		}
	}
	r, err := New(Config{Mode: ModeLocal, Bwrap: bwrap})
	if err != nil {
		t.Skipf("no Landlock here: %v", err)
	}
	return r
}

// manifest is a strict manifest over a fresh workdir, allowing cmds.
func manifest(t *testing.T, cmds ...string) *capability.Manifest {
	return capability.Strict(t.TempDir(), cmds...)
}

func run(t *testing.T, r *Runner, m *capability.Manifest, argv ...string) (*Outcome, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	o, err := r.Run(context.Background(), &Spec{Manifest: m, Argv: argv, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("%v: refused: %v", argv, err)
	}
	if o.Stdout.Digest != digest(stdout.Bytes()) || o.Stdout.Size != int64(stdout.Len()) ||
		o.Stderr.Digest != digest(stderr.Bytes()) || o.Stderr.Size != int64(stderr.Len()) {
		t.Fatalf("output digests %+v %+v do not match what was written", o.Stdout, o.Stderr)
	}
	return o, stdout.String(), stderr.String()
}

func TestEcho(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t, "echo")
	o, out, _ := run(t, r, m, "echo", "hi")
	if o.Outcome() != attest.OutcomeOK || out != "hi\n" {
		t.Fatalf("outcome %s %+v, stdout %q", o.Outcome(), o.Error, out)
	}
	caps, _ := m.Digest()
	s := o.Sandbox
	if s.Kind != string(KindLandlockBwrap) || !strings.HasPrefix(s.Version, "landlock-abi-") || !strings.Contains(s.Version, "bubblewrap-") || s.Capabilities != caps {
		t.Fatalf("sandbox %+v", s)
	}
	joined := strings.Join(s.Applied, "\n")
	for _, want := range []string{"fs.read /usr", "fs.read_write " + m.Workdir, "net.blocked namespace", "net.tcp deny", "command /usr/bin/echo", "limit.memory 536870912"} {
		if !strings.Contains(joined, want) {
			t.Errorf("applied rules lack %q:\n%s", want, joined)
		}
	}
	if o.StartedAt.IsZero() || o.FinishedAt.Before(o.StartedAt) {
		t.Fatalf("times %v %v", o.StartedAt, o.FinishedAt)
	}
}

// TestDeniedRead: a file outside the grant cannot be read inside the
// sandbox; granted, the same command reads it.
func TestDeniedRead(t *testing.T) {
	r := localRunner(t, "")
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.txt")
	os.WriteFile(secret, []byte("s3cr3t\n"), 0o644)

	m := manifest(t, "cat")
	o, out, errOut := run(t, r, m, "cat", secret)
	if o.Outcome() != attest.OutcomeFailed || o.Exit.Status == 0 || strings.Contains(out, "s3cr3t") {
		t.Fatalf("read outside the grant: outcome %s exit %+v stdout %q", o.Outcome(), o.Exit, out)
	}
	if !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("stderr %q, want Permission denied", errOut)
	}

	m.Filesystem.Read = append(m.Filesystem.Read, secretDir)
	o, out, _ = run(t, r, m, "cat", secret)
	if o.Outcome() != attest.OutcomeOK || out != "s3cr3t\n" {
		t.Fatalf("granted read: outcome %s stdout %q", o.Outcome(), out)
	}
}

// TestDeniedWrite: writing outside the grant fails and leaves nothing.
func TestDeniedWrite(t *testing.T) {
	r := localRunner(t, "")
	other := t.TempDir()
	m := manifest(t, "sh")
	target := filepath.Join(other, "planted")
	o, _, errOut := run(t, r, m, "sh", "-c", "echo x > "+target)
	if o.Outcome() != attest.OutcomeFailed {
		t.Fatalf("outcome %s, stderr %q", o.Outcome(), errOut)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("the sandboxed command wrote outside its grant")
	}
	// Inside the workdir it may write.
	o, _, errOut = run(t, r, m, "sh", "-c", "echo x > inside.txt")
	if o.Outcome() != attest.OutcomeOK {
		t.Fatalf("write in workdir: %s %q", o.Outcome(), errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(m.Workdir, "inside.txt")); string(b) != "x\n" {
		t.Fatalf("workdir file %q", b)
	}
}

// listen accepts connections on 127.0.0.1 and counts them.
func listen(t *testing.T) (port int, accepted func() int) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := make(chan int, 1)
	n <- 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			v := <-n
			n <- v + 1
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() int { v := <-n; n <- v; return v }
}

// connect is a command that opens a TCP connection to port (bash's
// /dev/tcp), exiting 0 only if the connection was made.
func connect(port int) []string {
	return []string{"bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d && echo connected", port)}
}

// TestBlockedNetwork: under a blocked network a socket connect fails, with
// bubblewrap and with CLONE_NEWNET; with the network unrestricted the same
// command connects (so the test can fail).
func TestBlockedNetwork(t *testing.T) {
	for _, variant := range []struct{ name, bwrap string }{{"bwrap", ""}, {"clone-newnet", "none"}} {
		t.Run(variant.name, func(t *testing.T) {
			r := localRunner(t, variant.bwrap)
			port, accepted := listen(t)
			m := manifest(t, "bash")
			o, out, errOut := run(t, r, m, connect(port)...)
			if o.Outcome() != attest.OutcomeFailed || strings.Contains(out, "connected") || accepted() != 0 {
				t.Fatalf("connect under a blocked network: outcome %s stdout %q stderr %q accepted %d", o.Outcome(), out, errOut, accepted())
			}
			want := KindLandlockBwrap
			if variant.bwrap == "none" {
				want = KindLandlockNetns
			}
			if o.Sandbox.Kind != string(want) {
				t.Fatalf("kind %s, want %s", o.Sandbox.Kind, want)
			}

			m.Profile, m.Network = "open", capability.Network{Mode: capability.NetUnrestricted}
			o, out, errOut = run(t, r, m, connect(port)...)
			if o.Outcome() != attest.OutcomeOK || !strings.Contains(out, "connected") {
				t.Fatalf("unrestricted connect: %s %q %q", o.Outcome(), out, errOut)
			}
			deadline := time.Now().Add(2 * time.Second)
			for accepted() != 1 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if accepted() != 1 || o.Sandbox.Kind != string(KindLandlock) {
				t.Fatalf("accepted %d, kind %s", accepted(), o.Sandbox.Kind)
			}
		})
	}
}

// TestBlockedNetworkNamespace: the network namespace blocks what Landlock
// (below ABI 10) does not restrict: a UDP datagram to the host's loopback
// never arrives; with the network unrestricted it does.
func TestBlockedNetworkNamespace(t *testing.T) {
	for _, variant := range []struct{ name, bwrap string }{{"bwrap", ""}, {"clone-newnet", "none"}} {
		t.Run(variant.name, func(t *testing.T) {
			r := localRunner(t, variant.bwrap)
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			port := pc.LocalAddr().(*net.UDPAddr).Port
			received := func() string {
				pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				b := make([]byte, 64)
				n, _, _ := pc.ReadFrom(b)
				return string(b[:n])
			}
			send := []string{"bash", "-c", fmt.Sprintf("echo ping > /dev/udp/127.0.0.1/%d", port)}
			m := manifest(t, "bash")
			run(t, r, m, send...)
			if got := received(); got != "" {
				t.Fatalf("a datagram left the blocked sandbox: %q", got)
			}
			m.Profile, m.Network = "open", capability.Network{Mode: capability.NetUnrestricted}
			o, _, errOut := run(t, r, m, send...)
			if got := received(); got != "ping\n" {
				t.Fatalf("unrestricted: received %q (%s %q)", got, o.Outcome(), errOut)
			}
		})
	}
}

// TestPortAllowList: Landlock lets the command connect to the allowed port
// only.
func TestPortAllowList(t *testing.T) {
	r := localRunner(t, "")
	if r.abi < 4 {
		t.Skipf("Landlock ABI %d cannot restrict TCP", r.abi)
	}
	allowed, acceptedAllowed := listen(t)
	other, acceptedOther := listen(t)
	m := manifest(t, "bash")
	m.Profile, m.Network = "ports", capability.Network{Mode: capability.NetAllow, Ports: []int{allowed}}
	if o, out, errOut := run(t, r, m, connect(allowed)...); o.Outcome() != attest.OutcomeOK || !strings.Contains(out, "connected") {
		t.Fatalf("allowed port: %s %q %q", o.Outcome(), out, errOut)
	}
	o, out, errOut := run(t, r, m, connect(other)...)
	if o.Outcome() != attest.OutcomeFailed || strings.Contains(out, "connected") || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("other port: %s %q %q", o.Outcome(), out, errOut)
	}
	time.Sleep(50 * time.Millisecond)
	if acceptedAllowed() != 1 || acceptedOther() != 0 {
		t.Fatalf("accepted %d on the allowed port, %d on the other", acceptedAllowed(), acceptedOther())
	}
}

func TestTimeoutKillsTheGroup(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t, "sh")
	m.Limits.TimeoutSeconds = 1
	start := time.Now()
	o, _, _ := run(t, r, m, "sh", "-c", "sleep 30 & sleep 30")
	if time.Since(start) > 15*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
	if o.Outcome() != attest.OutcomeFailed || !o.Exit.TimedOut {
		t.Fatalf("outcome %s exit %+v", o.Outcome(), o.Exit)
	}
}

func TestRlimitsAndEnv(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t, "sh")
	m.Limits.MemoryBytes = 256 << 20
	m.Limits.OpenFiles = 64
	t.Setenv("ZT_TEST_SECRET", "must-not-pass")
	o, out, errOut := run(t, r, m, "sh", "-c", `ulimit -v; ulimit -n; echo "secret=$ZT_TEST_SECRET path=$PATH"`)
	if o.Outcome() != attest.OutcomeOK {
		t.Fatalf("%s %q", o.Outcome(), errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != strconv.Itoa(256<<10) || lines[1] != "64" {
		t.Fatalf("limits seen inside: %q", out)
	}
	if !strings.HasPrefix(lines[2], "secret= path=") || lines[2] == "secret= path=" {
		t.Fatalf("environment inside: %q (PATH passed, nothing else)", lines[2])
	}
}

// TestRefusedBeforeSpawn: what cannot be enforced or is not allowed is
// refused with a class, and nothing runs.
func TestRefusedBeforeSpawn(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t, "echo")
	marker := filepath.Join(m.Workdir, "ran")
	cases := []struct {
		name  string
		m     func() *capability.Manifest
		argv  []string
		class string
	}{
		{"not on the allow list", func() *capability.Manifest { return m }, []string{"touch", marker}, attest.ErrorCommandNotAllowed},
		{"absolute path not listed", func() *capability.Manifest { return m }, []string{"/usr/bin/touch", marker}, attest.ErrorCommandNotAllowed},
		{"relative path", func() *capability.Manifest { return m }, []string{"./echo"}, attest.ErrorCommandNotAllowed},
		{"listed but absent", func() *capability.Manifest {
			c := *m
			c.Commands = []string{"no-such-command-zt"}
			return &c
		}, []string{"no-such-command-zt"}, attest.ErrorCommandNotFound},
		{"domains", func() *capability.Manifest {
			c := *m
			c.Profile, c.Network = "fetch", capability.Network{Mode: capability.NetAllow, Domains: []string{"api.example.com"}}
			return &c
		}, []string{"echo"}, attest.ErrorSandboxSetup},
		{"no workdir", func() *capability.Manifest {
			c := *m
			c.Workdir, c.Filesystem.ReadWrite = "/nonexistent/zt", []string{"/nonexistent/zt"}
			return &c
		}, []string{"echo"}, attest.ErrorSandboxSetup},
		{"invalid manifest", func() *capability.Manifest {
			c := *m
			c.Limits.TimeoutSeconds = 0
			return &c
		}, []string{"echo"}, attest.ErrorSandboxSetup},
	}
	for _, c := range cases {
		_, err := r.Run(context.Background(), &Spec{Manifest: c.m(), Argv: c.argv})
		ref, ok := IsRefusal(err)
		if !ok || ref.Class != c.class {
			t.Errorf("%s: %v, want a %s refusal", c.name, err, c.class)
		}
		if err := r.Check(&Spec{Manifest: c.m(), Argv: c.argv}); err == nil {
			t.Errorf("%s: Check passed", c.name)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a refused command ran")
	}
}

// TestOutputs: declared output files are digested, a planted symbolic link
// is not followed.
func TestOutputs(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t, "sh")
	m.Outputs = []string{"result.json", "link.txt", "missing.txt"}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.Symlink(secret, filepath.Join(m.Workdir, "link.txt"))
	o, _, errOut := run(t, r, m, "sh", "-c", `printf '{"ok":true}' > result.json`)
	if o.Outcome() != attest.OutcomeOK {
		t.Fatalf("%s %q", o.Outcome(), errOut)
	}
	want := []attest.FileOutput{{Path: "result.json", Digest: digest([]byte(`{"ok":true}`)), Size: 11}, {Path: "link.txt"}, {Path: "missing.txt"}}
	if fmt.Sprint(o.Files) != fmt.Sprint(want) {
		t.Fatalf("files %+v, want %+v", o.Files, want)
	}
}

// TestUnsafe: without a sandbox the same read succeeds — the reason the
// mode is explicit — and the result says kind none.
func TestUnsafe(t *testing.T) {
	r, err := New(Config{Mode: ModeUnsafe})
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("s3cr3t"), 0o644)
	o, out, _ := run(t, r, manifest(t, "cat"), "cat", secret)
	if o.Outcome() != attest.OutcomeOK || out != "s3cr3t" || o.Sandbox.Kind != "none" {
		t.Fatalf("%s %q %+v", o.Outcome(), out, o.Sandbox)
	}
}

// TestHelperFailure: when the helper never reports (here it is not a
// sandbox helper at all), the outcome is a sandbox setup error — the
// command did not start — not the command's failure.
func TestHelperFailure(t *testing.T) {
	r := localRunner(t, "")
	r.cfg.Helper = "/usr/bin/false"
	o, err := r.Run(context.Background(), &Spec{Manifest: manifest(t, "echo"), Argv: []string{"echo"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Started || o.Outcome() != attest.OutcomeError || o.Error == nil || o.Error.Class != attest.ErrorSandboxSetup {
		t.Fatalf("started %v outcome %s error %+v", o.Started, o.Outcome(), o.Error)
	}
}

// TestAbsentGrant: a granted path that does not exist grants nothing and
// is reported as absent.
func TestAbsentGrant(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t, "echo")
	gone := filepath.Join(t.TempDir(), "gone")
	m.Filesystem.Read = append(m.Filesystem.Read, gone)
	o, _, _ := run(t, r, m, "echo")
	if o.Outcome() != attest.OutcomeOK {
		t.Fatalf("%s %+v", o.Outcome(), o.Error)
	}
	if !strings.Contains(strings.Join(o.Sandbox.Applied, "\n"), "fs.read "+gone+" (absent)") {
		t.Fatalf("applied rules do not say the path was absent: %v", o.Sandbox.Applied)
	}
}

// TestExecFails: an allowed "command" the kernel cannot execute did not
// start; the class says so.
func TestExecFails(t *testing.T) {
	r := localRunner(t, "")
	m := manifest(t)
	bad := filepath.Join(m.Workdir, "not-a-program")
	os.WriteFile(bad, []byte{0, 1, 2, 3}, 0o755)
	m.Commands = []string{bad}
	o, err := r.Run(context.Background(), &Spec{Manifest: m, Argv: []string{bad}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Started || o.Outcome() != attest.OutcomeError || o.Error.Class != attest.ErrorSpawn || !strings.Contains(o.Error.Message, "exec format error") {
		t.Fatalf("started %v outcome %s error %+v", o.Started, o.Outcome(), o.Error)
	}
}
