package log

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/zt-infra/ztlog/log/logtest"
)

// Once AppendThen has returned ErrAbandoned, the caller owns its entry
// slice again. The log must commit
// the bytes it was given (and whose leaf hash it computed), not whatever the
// slice holds by the time the committer writes the bundle.
func TestAbandonedEntryKeepsItsBytes(t *testing.T) {
	l := openTestLog(t, logtest.Dir(t), testKey(t, "example.com/reuse"), func(o *Options) {
		o.CommitDelay, o.CommitSiblings = 100*time.Millisecond, 1 // the caller gives up first
	})
	defer closeLog(t, l)
	buf := []byte(`{"decision":"deny-AAAAAAAA"}`)
	orig := bytes.Clone(buf)
	late := make(chan uint64, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.AppendThen(ctx, buf, func(idx uint64, err error) {
		if err != nil {
			t.Errorf("late: %v", err)
		}
		late <- idx
	})
	if !errors.Is(err, ErrAbandoned) {
		t.Fatalf("AppendThen = %v, want ErrAbandoned", err)
	}
	// The caller reuses its buffer for something else.
	copy(buf, []byte(`{"decision":"allow-BBBBBBBBB"}`))

	var idx uint64
	select {
	case idx = <-late:
	case <-time.After(10 * time.Second):
		t.Fatal("no late report")
	}
	bg := context.Background()
	cp, err := l.Await(bg, idx)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := l.Entry(bg, idx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.InclusionProof(bg, idx, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, LeafHash(leaf), p, cp.Hash); err != nil {
		t.Errorf("entry %d as stored (%q) does not verify against the checkpoint: %v", idx, leaf, err)
	}
	if !bytes.Equal(leaf, orig) {
		t.Errorf("entry %d stored as %q, but the appended bytes were %q", idx, leaf, orig)
	}
}

// When Close's ctx ends before the committer has drained, Tessera stops
// with the log's context. Every Append still pending must then return
// (ErrClosed: its fate unknown), however patient its caller, and the
// committer must stop.
func TestCloseOutOfTimeAnswersEveryAppend(t *testing.T) {
	l := openTestLog(t, logtest.Dir(t), testKey(t, testOrigin), func(o *Options) {
		o.BatchMaxSize = 2
		o.BatchMaxAge = 20 * time.Millisecond
	})
	const n = 64
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(context.Background(), entryN(i))
			results <- err
		}()
	}
	// Wait until many entries are pending.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		p := len(l.pending)
		l.mu.Unlock()
		if p >= 16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d pending", p)
		}
		time.Sleep(time.Millisecond)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel() // shutdown grace period already over
	if err := l.Close(cctx); err == nil {
		t.Log("Close returned nil")
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		close(results)
		for err := range results {
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("an Append pending at Close returned %v, want success or ErrClosed", err)
			}
		}
		select {
		case <-l.stopped:
		default:
			t.Error("the committer still runs after Close returned")
		}
	case <-time.After(10 * time.Second):
		close(results)
		answered := 0
		for range results {
			answered++
		}
		l.mu.Lock()
		p := len(l.pending)
		l.mu.Unlock()
		select {
		case <-l.stopped:
		default:
			t.Errorf("committer goroutine still running 10s after Close")
		}
		t.Fatalf("%d of %d Append calls (context.Background) never returned after Close (%d still pending)", n-answered, n, p)
	}
}
