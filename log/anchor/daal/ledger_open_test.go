package daal

import (
	"testing"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// A free ledger is opened for writing.
func TestOpenLedgerOrSnapshotTakesAFreeLedger(t *testing.T) {
	l, err := OpenLedgerOrSnapshot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.ReadOnly() {
		t.Error("a free ledger was opened as a snapshot")
	}
}

// A held ledger is read as a snapshot, with its anchors.
func TestOpenLedgerOrSnapshotReadsAHeldLedger(t *testing.T) {
	dir := t.TempDir()
	held, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Add(vdaal.Anchor{State: vdaal.Queued, Attestation: vdaal.Pending, Size: 1}); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedgerOrSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.ReadOnly() {
		t.Error("a held ledger was not opened as a snapshot")
	}
	if n := len(l.Anchors()); n != 1 {
		t.Errorf("snapshot has %d anchors, want 1", n)
	}
}
