package main

// Crash tests: real zt-witness processes killed with SIGKILL in the middle
// of add-checkpoint requests and restarted on the same state directory. The
// witness must never cosign two different trees of one size and never roll
// back what it acknowledged.
//
// SIGKILL leaves the kernel's page cache intact, so these tests show the
// write protocol is atomic and ordered (state persisted before the answer);
// they do not simulate power loss, which the fsyncs are for.

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/witness/cosigner"
	"golang.org/x/mod/sumdb/note"
)

type crashSetup struct {
	dir, cfg, key, vkey, state string
	log                        *testLog
}

func newCrashSetup(t *testing.T, size int) *crashSetup {
	t.Helper()
	s := &crashSetup{dir: t.TempDir()}
	s.key, s.vkey = keygen(t, s.dir, "witness.example/crash")
	s.log = newTestLog(t, "crash.example/log")
	s.log.grow(size, "honest")
	s.cfg = filepath.Join(s.dir, "witness.json")
	writeConfig(t, s.cfg, s.log)
	s.state = filepath.Join(s.dir, "state")
	return s
}

func (s *crashSetup) start(t *testing.T, bin string, env ...string) *witnessProc {
	return startWitness(t, bin, env, "--config", s.cfg, "--key", s.key, "--state", s.state)
}

// stateOf reads the witness's latest cosigned checkpoint and checks it
// carries valid log and witness signatures.
func (s *crashSetup) stateOf(t *testing.T, p *witnessProc) (size uint64, root string) {
	t.Helper()
	cp := p.latest(t, s.log.origin)
	if cp == "" {
		return 0, ""
	}
	lv, _ := note.NewVerifier(s.log.vkey)
	wv, _ := cosigner.NewVerifier(s.vkey)
	if _, err := note.Open([]byte(cp), note.VerifierList(lv)); err != nil {
		t.Fatalf("stored checkpoint: log signature: %v\n%s", err, cp)
	}
	if _, err := note.Open([]byte(cp), note.VerifierList(wv)); err != nil {
		t.Fatalf("stored checkpoint: witness cosignature: %v\n%s", err, cp)
	}
	lines := strings.SplitN(cp, "\n", 4)
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("stored checkpoint %q", cp)
	}
	return size, lines[2]
}

func killedBySIGKILL(p *witnessProc) bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestCrashAtEachStepOfAStateWrite kills the witness at each step of
// persisting a cosigned checkpoint, after it has decided to cosign and
// before it answers. Before the rename the old state must survive; after it,
// the new one; never a mixture, never nothing; the client never holds a
// cosignature for a state that was lost.
func TestCrashAtEachStepOfAStateWrite(t *testing.T) {
	for _, step := range []struct {
		name     string
		survives bool
	}{{"begin", false}, {"written", false}, {"synced", false}, {"renamed", true}, {"done", true}} {
		t.Run(step.name, func(t *testing.T) {
			s := newCrashSetup(t, 8)
			l := s.log
			// The first write succeeds; the second is killed at the step.
			p := s.start(t, crashBin, "ZT_WITNESS_CRASH_AT="+step.name+":2")
			if a := p.post("old 0\n\n" + l.checkpoint(t, 5)); a.status != 200 {
				t.Fatalf("first cosign: %d %s %v", a.status, a.body, a.err)
			}
			if a := p.post(l.request(t, 5, 8)); a.err == nil {
				t.Fatalf("the request being persisted got an answer (%d %q) although the witness was killed", a.status, a.body)
			}
			<-p.exited
			if !killedBySIGKILL(p) {
				t.Fatalf("witness did not die of SIGKILL: %v\n%s", p.cmd.ProcessState, p.stderr)
			}

			q := s.start(t, witnessBin)
			size, root := s.stateOf(t, q)
			want := uint64(5)
			if step.survives {
				want = 8
			}
			if size != want || root != base64.StdEncoding.EncodeToString(l.tree.HashAt(want)) {
				t.Fatalf("after a crash at %q the state is size %d, want %d", step.name, size, want)
			}
			if left, _ := filepath.Glob(filepath.Join(s.state, "checkpoints", "*.tmp-*")); len(left) != 0 {
				t.Fatalf("temporary files left after restart: %v", left)
			}
			// A different tree of the state's size, by the same log key, is
			// refused; so is one that does not extend it.
			fork := l.fork()
			fork.grow(8, "fork")
			if a := q.post(fmt.Sprintf("old %d\n\n", size) + fork.checkpoint(t, size)); a.status != 422 {
				t.Fatalf("fork at the stored size: %d %s", a.status, a.body)
			}
			if size == 5 {
				if a := q.post(fork.request(t, 5, 8)); a.status != 422 {
					t.Fatalf("fork proof from 5 to 8: %d %s", a.status, a.body)
				}
			}
			// The honest log carries on from the state.
			if a := q.post(l.request(t, size, 8)); a.status != 200 {
				t.Fatalf("honest log after restart: %d %s", a.status, a.body)
			}
		})
	}
}

// TestSIGKILLUnderLoad kills the witness at random moments while an honest
// client and a forking client (same log key, another tree) keep submitting,
// then restarts it, many times. Every cosignature a client received must
// still be covered by the state after the restart, the state must always be
// the honest tree, and the fork must never be cosigned.
func TestSIGKILLUnderLoad(t *testing.T) {
	const maxSize = 4000
	s := newCrashSetup(t, maxSize)
	l := s.log
	fork := l.fork()
	fork.grow(maxSize, "fork")
	wv, _ := cosigner.NewVerifier(s.vkey)
	rounds := 12
	if testing.Short() {
		rounds = 4
	}

	p := s.start(t, witnessBin)
	if a := p.post("old 0\n\n" + l.checkpoint(t, 1)); a.status != 200 {
		t.Fatalf("bootstrap: %d %s", a.status, a.body)
	}
	var mu sync.Mutex
	acked := uint64(1) // the largest size any client got a cosignature for
	var honest200, fork200, killedMidRequest int

	for round := 0; round < rounds; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < 3; c++ {
			isFork := c == 2
			wg.Add(1)
			go func() {
				defer wg.Done()
				var known uint64
				for {
					select {
					case <-stop:
						return
					default:
					}
					next := min(known+1+uint64(rand.IntN(4)), maxSize)
					var body string
					if isFork {
						// Whatever the witness has, offer a fork extending "it".
						body = fmt.Sprintf("old %d\n", known)
						if known > 0 && known < next {
							pr, _ := fork.tree.ConsistencyProof(known, next)
							for _, h := range pr {
								body += base64.StdEncoding.EncodeToString(h) + "\n"
							}
						}
						body += "\n" + fork.checkpoint(t, next)
					} else {
						body = l.request(t, known, next)
					}
					a := p.post(body)
					switch {
					case a.err != nil:
						mu.Lock()
						killedMidRequest++
						mu.Unlock()
						return // the witness was killed
					case a.status == 200:
						cp := l.checkpoint(t, next)
						if isFork {
							cp = fork.checkpoint(t, next)
						}
						if _, err := note.Open([]byte(cp+a.body), note.VerifierList(wv)); err != nil {
							t.Errorf("cosignature does not verify: %v", err)
						}
						mu.Lock()
						if isFork {
							fork200++
						} else {
							honest200++
							acked = max(acked, next)
						}
						mu.Unlock()
						known = next
					case a.status == 409:
						n, err := strconv.ParseUint(strings.TrimSpace(a.body), 10, 64)
						if err != nil {
							t.Errorf("409 body %q", a.body)
							return
						}
						known = n
					case a.status == 422 && isFork:
						known = 0 // re-learn the size
					default:
						t.Errorf("fork=%v old %d next %d: %d %s", isFork, known, next, a.status, a.body)
						return
					}
					if known >= maxSize {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(10+rand.IntN(60)) * time.Millisecond)
		p.kill()
		close(stop)
		wg.Wait()

		p = s.start(t, witnessBin)
		size, root := s.stateOf(t, p)
		mu.Lock()
		a := acked
		mu.Unlock()
		if size < a {
			t.Fatalf("round %d: state rolled back to %d after a cosignature for %d was given", round, size, a)
		}
		if root != base64.StdEncoding.EncodeToString(l.tree.HashAt(size)) {
			t.Fatalf("round %d: state at size %d is not the honest tree", round, size)
		}
		if size >= maxSize {
			break
		}
	}
	if fork200 != 0 {
		t.Fatalf("the fork was cosigned %d times", fork200)
	}
	if honest200 < 10 {
		t.Fatalf("only %d honest cosignatures in the whole run; the test did not exercise the witness", honest200)
	}
	t.Logf("%d rounds, %d honest cosignatures, %d requests cut off by SIGKILL, final acked size %d", rounds, honest200, killedMidRequest, acked)
}
