package daal

import (
	"context"
	"testing"
	"time"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

func TestAnchorQueuedConfirmedVerified(t *testing.T) {
	e := newEnv(t)
	a := e.anchorer(func(c *AnchorConfig) { c.MinNewEntries = 3 })

	// Nothing to anchor on an empty log, nor below MinNewEntries.
	e.grow(2)
	e.step(a)
	if n := len(e.ledger.Anchors()); n != 0 {
		t.Fatalf("%d anchors for a log of 2 entries with MinNewEntries 3", n)
	}
	cp := e.grow(3)
	e.step(a)
	an := e.only(1)
	if an.State != vdaal.Submitted || an.Attestation != vdaal.Pending || len(an.Txs) != 1 || an.Size != cp.Size {
		t.Fatalf("after the first step: %+v", an)
	}
	// Not mined yet: another step changes nothing.
	e.step(a)
	if an := e.only(1); an.State != vdaal.Submitted {
		t.Fatalf("state %s before any block", an.State)
	}
	e.sim.Commit()
	e.step(a)
	an = e.only(1)
	if an.State != vdaal.Confirmed || an.RecordID != 1 || an.TxHash != an.Txs[0].Hash || an.Block == 0 {
		t.Fatalf("after mining: %+v", an)
	}
	rep := e.reconcile(nil)
	if len(rep.Alerts) != 0 {
		t.Fatalf("alerts: %+v", rep.Alerts)
	}
	if an := e.only(1); an.Attestation != vdaal.Verified {
		t.Fatalf("attestation %s: %s", an.Attestation, an.Reason)
	}
	if !rep.Code.OK || len(rep.OnChain) != 1 || rep.OnChain[0].Verdict != "verified" {
		t.Fatalf("report: %+v", rep)
	}

	// The log grows; within Interval nothing new is anchored.
	e.grow(4)
	e.step(a)
	if n := len(e.ledger.Anchors()); n != 1 {
		t.Fatalf("anchored again within the interval (%d anchors)", n)
	}
	e.clock.Advance(2 * time.Minute)
	e.step(a)
	e.sim.Commit()
	e.step(a)
	if an := e.only(2); an.State != vdaal.Confirmed || an.RecordID != 2 {
		t.Fatalf("second anchor: %+v", an)
	}
	// Growing more: the first anchor is now checked by a consistency proof
	// into the larger tree.
	e.grow(5)
	rep = e.reconcile(nil)
	if len(rep.Alerts) != 0 {
		t.Fatalf("alerts: %+v", rep.Alerts)
	}
	for _, id := range []uint64{1, 2} {
		if an := e.only(id); an.Attestation != vdaal.Verified {
			t.Fatalf("anchor %d: %s %s", id, an.Attestation, an.Reason)
		}
	}
	// The ledger's history holds every transition in order.
	hist := ledgerHistory(t, e.ledgerD, 1)
	want := []string{"queued/pending", "submitted/pending", "confirmed/pending", "confirmed/verified"}
	if len(hist) != len(want) {
		t.Fatalf("history %v, want %v", hist, want)
	}
	for i := range want {
		if hist[i] != want[i] {
			t.Fatalf("history %v, want %v", hist, want)
		}
	}
}

// TestRunAnchorsAndReconciles runs the loop as `ztlog daal anchor` does:
// steps every Poll, reconciliation between steps, reports handed out.
func TestRunAnchorsAndReconciles(t *testing.T) {
	e := newEnv(t)
	e.grow(3)
	a := e.anchorer(func(c *AnchorConfig) { c.Poll = 20 * time.Millisecond; c.Now = nil })
	reports := make(chan *vdaal.Report, 100)
	a.SetReconcile(e.reconcileConfig(), time.Nanosecond, func(r *vdaal.Report) {
		select {
		case reports <- r:
		default:
		}
	})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(20 * time.Second)
	for {
		e.sim.Commit()
		select {
		case r := <-reports:
			if len(r.Anchors) == 1 && r.Anchors[0].Attestation == vdaal.Verified {
				if len(r.Alerts) != 0 {
					t.Fatalf("alerts %+v", r.Alerts)
				}
				return
			}
		case <-deadline:
			t.Fatal("no verified anchor reported")
		case <-time.After(30 * time.Millisecond):
		}
	}
}
