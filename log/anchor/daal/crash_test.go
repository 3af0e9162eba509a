package daal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// TestRestartMidFlight stops the anchorer at each point where a process
// can die while an anchor is in flight, restarts it over the same ledger,
// and checks that every checkpoint is anchored exactly once.
func TestRestartMidFlight(t *testing.T) {
	for _, point := range []string{"after-record-before-send", "after-send"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			e.grow(3)
			crashing := e.anchorer(func(c *AnchorConfig) {
				c.crash = func(p string) error {
					if p == point {
						return errCrash
					}
					return nil
				}
			})
			if err := crashing.Step(e.ctx); !errors.Is(err, errCrash) {
				t.Fatalf("step: %v", err)
			}
			e.restart()
			a := e.anchorer(nil)
			e.step(a) // finds the recorded transaction; re-broadcasts it if the node lacks it
			e.sim.Commit()
			e.step(a)
			if an := e.only(1); an.State != vdaal.Confirmed || len(an.Txs) != 1 {
				t.Fatalf("after restart: %+v", an)
			}
			if n := len(e.ledger.Anchors()); n != 1 {
				t.Fatalf("%d anchors in the ledger, want 1", n)
			}
			if n := len(e.ourEvents()); n != 1 {
				t.Fatalf("%d anchors on chain, want 1 (no double anchor, no lost anchor)", n)
			}
			if rep := e.reconcile(nil); len(rep.Alerts) != 0 {
				t.Fatalf("alerts %+v", rep.Alerts)
			}
		})
	}
}

// TestRestartBetweenQueueAndSign: a crash right after queueing leaves a
// queued anchor that the restarted anchorer signs and submits.
func TestRestartBetweenQueueAndSign(t *testing.T) {
	e := newEnv(t)
	cp := e.grow(2)
	a := e.anchorer(nil)
	an, err := a.queue(e.ctx)
	if err != nil || an == nil {
		t.Fatalf("queue: %v", err)
	}
	e.restart()
	a = e.anchorer(nil)
	e.grow(2) // the log grows meanwhile; the queued checkpoint is still anchored first
	e.step(a)
	e.sim.Commit()
	e.step(a)
	got := e.only(1)
	if got.State != vdaal.Confirmed || got.Size != cp.Size {
		t.Fatalf("%+v", got)
	}
	e.clock.Advance(2 * time.Minute)
	e.anchorOnce(a)
	if n := len(e.ourEvents()); n != 2 {
		t.Fatalf("%d anchors on chain, want 2", n)
	}
}

// TestLedgerTornLine: a crash in the middle of a ledger write leaves a
// partial last line, which is dropped on open; other damage is refused.
func TestLedgerTornLine(t *testing.T) {
	e := newEnv(t)
	e.grow(1)
	e.anchorOnce(e.anchorer(nil))
	e.ledger.Close()
	path := filepath.Join(e.ledgerD, ledgerFile)
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(append([]byte{}, good...), `{"id":1,"state":"fai`...), 0o600); err != nil {
		t.Fatal(err)
	}
	e.openLedger()
	if an := e.only(1); an.State != vdaal.Confirmed {
		t.Fatalf("torn line changed the anchor: %s", an.State)
	}
	e.ledger.Close()
	if b, _ := os.ReadFile(path); string(b) != string(good) {
		t.Fatal("torn line not dropped")
	}
	// A complete but invalid line is corruption: refused, file untouched.
	bad := append(append([]byte{}, good...), "{\"id\":1,\"state\":\"exploded\",\"attestation\":\"pending\"}\n"...)
	os.WriteFile(path, bad, 0o600)
	if _, err := OpenLedger(e.ledgerD); !errors.Is(err, ErrLedger) {
		t.Fatalf("open corrupt ledger: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(bad) {
		t.Fatal("a corrupt ledger was modified")
	}
}

func TestLedgerSingleHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := OpenLedger(dir); !errors.Is(err, ErrLedgerBusy) {
		t.Fatalf("second holder: %v", err)
	}
	a, err := l.Add(vdaal.Anchor{State: vdaal.Queued, Attestation: vdaal.Pending, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot reads it while it is held, and writes nothing.
	snap, err := OpenLedgerSnapshot(dir)
	if err != nil || len(snap.Anchors()) != 1 || !snap.ReadOnly() {
		t.Fatalf("snapshot: %v", err)
	}
	a.State = vdaal.Failed
	if err := snap.Put(a); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(a.ID); got.State != vdaal.Queued {
		t.Fatal("a snapshot's Put reached the ledger")
	}
	if hist := ledgerHistory(t, dir, a.ID); len(hist) != 1 {
		t.Fatalf("a snapshot wrote the file: %v", hist)
	}
}

func TestLedgerRefusesImpossibleTransitions(t *testing.T) {
	l, err := OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := l.Add(vdaal.Anchor{State: vdaal.Queued, Attestation: vdaal.Pending, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	a.State = vdaal.Confirmed
	if err := l.Put(a); err == nil {
		t.Fatal("queued -> confirmed without a transaction accepted")
	}
	a.State = vdaal.Failed
	if err := l.Put(a); err != nil {
		t.Fatal(err)
	}
	a.State = vdaal.Queued
	if err := l.Put(a); err == nil {
		t.Fatal("failed -> queued accepted")
	}
}
