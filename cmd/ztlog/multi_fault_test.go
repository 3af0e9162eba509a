package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// load asks for allows from workers concurrent agents, worker w on
// frontends[w % len], until stop is closed, recording every allow answered
// (as acknowledged: the entry is committed) and every other answer.
type load struct {
	mu       sync.Mutex
	answered []servedDecision
	perFront map[string]int
	failed   map[string]int // non-allow answers and errors, by frontend
	lastErr  error
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (c *cluster) startLoad(t *testing.T, frontends []*frontend, workers int) *load {
	l := &load{perFront: map[string]int{}, failed: map[string]int{}, stop: make(chan struct{})}
	for w := range workers {
		f := frontends[w%len(frontends)]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				ar, err := c.decide(ctx, f, fmt.Sprintf("load-%d-%d", w, i))
				cancel()
				l.mu.Lock()
				if err == nil && ar.Decision == "allow" {
					l.answered = append(l.answered, servedDecision{ar.Log.Index, ar.Log.LeafHash, ar.Receipt})
					l.perFront[f.addr]++
				} else {
					l.failed[f.addr]++
					if err == nil {
						err = fmt.Errorf("%s: %v", ar.Decision, ar.Reasons)
					}
					l.lastErr = err
				}
				l.mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

func (l *load) count(f *frontend) (ok, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perFront[f.addr], l.failed[f.addr]
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// waitCount waits until f has answered at least n allows under l.
func (l *load) waitCount(t *testing.T, f *frontend, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, failed := l.count(f)
		if ok >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d allows (%d other answers, last %v) within %s, want %d", f.addr, ok, failed, l.lastErr, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// audit runs `zt-audit audit` over the whole log as f serves it: the tree
// recomputed from every tile against the checkpoint, every entry parsed,
// results linked.
func (c *cluster) audit(t *testing.T, f *frontend) {
	t.Helper()
	bin := filepath.Join(filepath.Dir(ztlogBin), "zt-audit")
	if out, err := exec.Command("go", "build", "-o", bin, "../zt-audit").CombinedOutput(); err != nil {
		t.Fatalf("build zt-audit: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "audit", "--log", "http://"+f.addr+"/log/", "--policy", c.path("trust.policy")).CombinedOutput()
	if err != nil {
		t.Fatalf("zt-audit audit over the log: %v\n%s", err, out)
	}
	t.Logf("zt-audit audit:\n%s", out)
}

// TestManyFrontendsSIGKILL: two frontends under load; one is killed
// (SIGKILL). The other keeps answering; every allow either answered is in
// the log with the answered leaf hash and a receipt that verifies; the log
// is one consistent tree (zt-audit audit).
func TestManyFrontendsSIGKILL(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.frontends[0], c.frontends[1]
	start := time.Now()
	c.setAgent(t, a, "register")
	c.waitDecision(t, b, "allow", start, 10*followBound)

	l := c.startLoad(t, c.frontends, 8)
	l.waitCount(t, b, 40, time.Minute)
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.cmd.Wait()
	if ws, ok := b.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("B did not die by SIGKILL: %v", b.cmd.ProcessState)
	}
	atKill, _ := l.count(a)
	l.waitCount(t, a, atKill+40, time.Minute)
	l.end()
	okA, _ := l.count(a)
	okB, _ := l.count(b)
	t.Logf("allows answered: A %d (%d after B was killed), B %d before its SIGKILL", okA, okA-atKill, okB)

	verifyAnswered(t, a.url(), c.agent, l.answered)
	c.audit(t, a)
}

// TestManyFrontendsDatabaseDown: the database is killed under load:
// while it is down no decision is an allow (the decision path fails
// closed); once it is back, allows resume; every allow answered is in the
// log and the log is one consistent tree.
func TestManyFrontendsDatabaseDown(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.frontends[0], c.frontends[1]
	start := time.Now()
	c.setAgent(t, a, "register")
	c.waitDecision(t, b, "allow", start, 10*followBound)

	l := c.startLoad(t, c.frontends, 4)
	l.waitCount(t, a, 20, time.Minute)
	c.db.Stop()
	downOK := map[*frontend]int{}
	for _, f := range c.frontends {
		downOK[f], _ = l.count(f)
	}
	// Decisions sent while it is down, one by one, each through both
	// frontends: none is an allow.
	for i := range 5 {
		for _, f := range c.frontends {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			ar, err := c.decide(ctx, f, fmt.Sprintf("down-%d", i))
			cancel()
			if err == nil && ar.Decision == "allow" {
				t.Errorf("database down: %s answered an allow (log index %d)", f.addr, ar.Log.Index)
			}
			if i == 0 {
				t.Logf("database down: %s answers %v", f.addr, err)
			}
		}
	}
	for _, f := range c.frontends {
		if ok, _ := l.count(f); ok > downOK[f]+4 { // at most the allows in flight at the kill
			t.Errorf("database down: %s answered %d allows under load after the kill", f.addr, ok-downOK[f])
		}
	}
	c.db.Start()
	restarted := time.Now()
	for _, f := range c.frontends {
		ok, _ := l.count(f)
		l.waitCount(t, f, ok+10, time.Minute)
	}
	t.Logf("allows resumed on both frontends %s after the database restarted", time.Since(restarted).Round(time.Millisecond))
	l.end()
	verifyAnswered(t, a.url(), c.agent, l.answered)
	c.audit(t, a)
}
