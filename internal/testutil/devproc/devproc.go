// Package devproc runs `ztlog dev` as a real process, for the end-to-end
// tests of the commands: a data directory, a free 127.0.0.1 port, the
// banner read up to "Stop with", the process killed (SIGKILL) when the
// test ends. FreeAddr and SyncBuffer serve the commands' other process
// tests too.
package devproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Dev is a running `ztlog dev`.
type Dev struct {
	// Dir is its --data-dir; Addr its --listen address.
	Dir, Addr string
	// Banner is what it printed on stdout before "Stop with".
	Banner []string
	// Stderr collects its logs (readable while it runs).
	Stderr *SyncBuffer
	Cmd    *exec.Cmd
}

// URL is the server's https URL.
func (d *Dev) URL() string { return "https://" + d.Addr }

// DevFile is the path of a file `ztlog dev` wrote under <data-dir>/dev.
func (d *Dev) DevFile(name string) string { return filepath.Join(d.Dir, "dev", name) }

// SyncBuffer is a bytes.Buffer a process may write while the test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr is a 127.0.0.1 address with a port free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs bin (a built ztlog) as `ztlog dev --data-dir dir --listen
// <free> --checkpoint-interval 100ms` with args added, and returns once it
// has printed its banner.
func Start(t testing.TB, bin, dir string, args ...string) *Dev {
	t.Helper()
	d := &Dev{Dir: dir, Addr: FreeAddr(t), Stderr: &SyncBuffer{}}
	d.Cmd = exec.Command(bin, append([]string{"dev", "--data-dir", dir, "--listen", d.Addr, "--checkpoint-interval", "100ms"}, args...)...)
	out, _ := d.Cmd.StdoutPipe()
	d.Cmd.Stderr = d.Stderr
	// Killed with the test binary, also when a panic skips the cleanup
	// (a panicking test once left a ztlog dev running for an hour).
	d.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Cmd.Process.Kill(); d.Cmd.Wait() })
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Stop with") {
			ready = true
			break
		}
		d.Banner = append(d.Banner, sc.Text())
	}
	if !ready {
		t.Fatalf("ztlog dev did not start:\n%s", d.Stderr.String())
	}
	go io.Copy(io.Discard, out)
	return d
}

// MainWithBinaries is a TestMain for tests that run the project's commands:
// it builds each package (a path relative to the test's directory) into a
// temporary directory, points *bin at the built binary, runs the tests,
// removes the directory and exits with their status. Each binary has its
// command's name. A package that does
// not build fails the run.
func MainWithBinaries(m *testing.M, bins map[*string]string) {
	dir, err := os.MkdirTemp("", "ztlog-test-bin")
	if err != nil {
		panic(err)
	}
	for bin, pkg := range bins {
		abs, err := filepath.Abs(pkg)
		if err != nil {
			panic(err)
		}
		*bin = filepath.Join(dir, filepath.Base(abs)) // the command's own name

		if out, err := exec.Command("go", "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Entry reads entry i of d's log through the public read API, waiting (at
// most 10s) for a checkpoint that covers it.
func (d *Dev) Entry(t testing.TB, i uint64) entry.Entry { return ReadEntry(t, d.Addr, i) }

// ReadEntry reads entry i through the public read API of the ztlog at
// addr (plain HTTP), waiting (at most 10s) for a checkpoint that covers it.
func ReadEntry(t testing.TB, addr string, i uint64) entry.Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/entries/%d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Leaf []byte `json:"leaf"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			parsed, err := entry.Parse(e.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			return parsed
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry %d: HTTP %d", i, resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
