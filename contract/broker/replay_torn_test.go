package broker_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/broker"
)

// Two brokers share a replay file, and one is killed in the middle of
// appending its line (a partial line without "\n" is left). The other's
// next claim must not be merged into those bytes: after a restart
// (OpenReplay rereads the file) the receipt it claimed is still known, and
// is not honoured a second time.
func TestReplayTornLineFromAnotherBroker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay")
	now := time.Now()
	a, err := broker.OpenReplay(path, 5*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	// Broker B (same file) dies mid-write: only the first bytes of its
	// base64url id reached the file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("b3RoZXItcmVjZW")
	f.Close()

	exp := now.Add(time.Hour)
	if err := a.Claim("receipt-1", exp); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	// ... the work ran. The broker restarts.
	a.Close()
	a2, err := broker.OpenReplay(path, 5*time.Second, now)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer a2.Close()
	err = a2.Claim("receipt-1", exp)
	if !errors.Is(err, broker.ErrReplayed) {
		b, _ := os.ReadFile(path)
		t.Fatalf("receipt-1 was honoured twice across a restart (second claim: %v); replay file: %q", err, b)
	}
}

// The same torn line, with its space already written, must not make the
// surviving broker's own line unreadable (every OpenReplay would then fail
// and no broker sharing the file could start again).
func TestReplayTornLineDoesNotWedgeTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay")
	now := time.Now()
	a, err := broker.OpenReplay(path, 5*time.Second, now)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	f.WriteString("b3RoZXI 17")
	f.Close()
	if err := a.Claim("receipt-1", now.Add(time.Hour)); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	a.Close()
	a2, err := broker.OpenReplay(path, 5*time.Second, now)
	if err != nil {
		t.Fatalf("after another broker crashed mid-write and this one claimed a receipt, the replay file cannot be opened any more: %v", err)
	}
	a2.Close()
}
