package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestSniffListenerSurvivesEMFILE runs in a child process with
// RLIMIT_NOFILE at 64: it exhausts the descriptors with idle connections,
// closes them, and asks for a page. Before the fix the accept loop returned
// on EMFILE and http.Server waited on Accept for good (issue 18 finding 1).
func TestSniffListenerSurvivesEMFILE(t *testing.T) {
	if os.Getenv("SNIFF_EMFILE_CHILD") == "1" {
		sniffEMFILEChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSniffListenerSurvivesEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), "SNIFF_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func sniffEMFILEChild(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := newSniffListener(ln, &tls.Config{}, true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(sl)
	defer srv.Close()

	var conns []net.Conn
	var dialErr error
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			dialErr = err
			break
		}
		conns = append(conns, c)
	}
	if dialErr == nil {
		t.Fatalf("200 connections under RLIMIT_NOFILE=64 did not exhaust the descriptors")
	}
	time.Sleep(200 * time.Millisecond) // the accept loop meets EMFILE meanwhile
	for _, c := range conns {
		c.Close()
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get(fmt.Sprintf("http://%s/", ln.Addr()))
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after the descriptors came back: status %d, want 200", resp.StatusCode)
		}
		return
	}
	t.Fatalf("the listener does not answer after the descriptors came back (exhausted with: %v): %v", dialErr, last)
}
