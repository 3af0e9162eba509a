package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zt-infra/ztlog/contract/entry"
)

// cutProxy forwards TCP connections to target until cut, which closes the
// listener and every connection: the log becomes unreachable.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// The log becomes unreachable while the approved command runs: zt run
// exits 79 and keeps the signed result in the outbox; the next zt run's
// broker commits it before running its own work, as the decision's result
// entry.
func TestRunKeepsUncommittedResultInOutbox(t *testing.T) {
	d := startDev(t)
	proxy := newCutProxy(t, d.addr)
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(ztBin, "run", "--server", "https://"+proxy.ln.Addr().String(), "--svid", d.svid("agent"),
		"--model", "anthropic/claude-sonnet-4", "--report", report, "--action", "demo.echo", "--resource", "demo://hello",
		"--", "sleep", "1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "ALLOW") {
			proxy.cut() // the decision is committed; the command is starting
			break
		}
	}
	io.Copy(&log, stderr)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitRunUnreported || !strings.Contains(log.String(), "outbox") {
		t.Fatalf("zt run with the log cut during the command: exit %d\n%s", code, log.String())
	}
	var first runReport
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &first) != nil || first.Decision != "allow" {
		t.Fatalf("report of the first run: %v %+v", err, first)
	}
	pending, _ := filepath.Glob(filepath.Join(d.svid("broker")+".outbox", "result-*.json"))
	if len(pending) != 1 {
		t.Fatalf("outbox holds %v, want one result", pending)
	}

	r := ztRun(t, d, []string{"--action", "demo.echo", "--resource", "demo://hello"}, "echo", "hi")
	if r.code != 0 || !strings.Contains(r.stderr, "committed 1 earlier result") || r.report.ResultIndex == nil {
		t.Fatalf("next run: exit %d\n%s", r.code, r.stderr)
	}
	if p, _ := filepath.Glob(filepath.Join(d.svid("broker")+".outbox", "result-*.json")); len(p) != 0 {
		t.Fatalf("outbox still holds %v", p)
	}
	// The next run's broker commits it after that run's decision, before its own result.
	for i := first.DecisionIndex + 1; i < *r.report.ResultIndex; i++ {
		if res, ok := readEntry(t, d, i).(*entry.Result); ok && res.DecisionIndex == first.DecisionIndex {
			if res.Outcome != "ok" {
				t.Fatalf("kept result committed with outcome %q", res.Outcome)
			}
			return
		}
	}
	t.Fatalf("no result entry for decision %d between it and the next run's result %d", first.DecisionIndex, *r.report.ResultIndex)
}
