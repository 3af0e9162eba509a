package log

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
)

// Checkpoint is a published, verified checkpoint.
type Checkpoint struct {
	// Origin, Size and Hash are the checkpoint body.
	Origin string
	Size   uint64
	Hash   []byte
	// Note is the signed note exactly as published, with the log's
	// signature and any witness cosignatures.
	Note []byte
	// Seen is when this process first read it.
	Seen time.Time
}

// watcher is the one reader of the published checkpoint. It keeps the
// latest verified checkpoint, releases Await callers whose index it covers,
// and refuses to go backwards.
type watcher struct {
	l    *Log
	poll time.Duration

	mu      sync.Mutex
	latest  *Checkpoint
	err     error // sticky: ErrInconsistent
	stopped bool
	waiters waitHeap
	kick    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
}

type waiter struct {
	index uint64
	ch    chan struct{} // closed when released
}

// waitHeap orders waiters by index so a new checkpoint releases a prefix.
type waitHeap []*waiter

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(*waiter)) }
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

func newWatcher(ctx context.Context, l *Log, poll time.Duration) *watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{l: l, poll: poll, kick: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
	w.refresh(ctx)
	go w.run(ctx)
	return w
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTimer(w.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.stopped = true
			w.releaseAll()
			w.mu.Unlock()
			return
		case <-w.kick:
		case <-t.C:
		}
		w.refresh(ctx)
		t.Reset(w.interval())
	}
}

func (w *watcher) interval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiters) > 0 {
		return w.poll
	}
	return idlePoll
}

// refresh reads the published checkpoint once and, if it is new, verifies
// its signature and its consistency with the previous one, then releases the
// waiters it covers. A checkpoint that goes backwards, forks, or cannot be
// proven consistent makes the watcher refuse all further service
// (ErrInconsistent): a log must never sign two views.
func (w *watcher) refresh(ctx context.Context) {
	raw, err := w.l.reader.ReadCheckpoint(ctx)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && ctx.Err() == nil {
			w.l.logger.Warn("read checkpoint", "error", err)
		}
		return
	}
	w.mu.Lock()
	prev, failed := w.latest, w.err != nil
	w.mu.Unlock()
	if failed || (prev != nil && bytes.Equal(raw, prev.Note)) {
		return
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, w.l.origin, w.l.key.Verifier)
	if err != nil {
		// A checkpoint we did not sign (or cannot parse) is never used.
		w.l.logger.Error("published checkpoint does not verify", "error", err)
		return
	}
	var inconsistent error
	if prev != nil {
		switch {
		case cp.Size < prev.Size:
			inconsistent = fmt.Errorf("%w: size went from %d to %d", ErrInconsistent, prev.Size, cp.Size)
		case cp.Size == prev.Size && !bytes.Equal(cp.Hash, prev.Hash):
			inconsistent = fmt.Errorf("%w: two roots for size %d", ErrInconsistent, cp.Size)
		case cp.Size > prev.Size && prev.Size > 0:
			pb, err := client.NewProofBuilder(ctx, cp.Size, w.l.reader.ReadTile)
			var p [][]byte
			if err == nil {
				p, err = pb.ConsistencyProof(ctx, prev.Size, cp.Size)
			}
			if err != nil {
				// Tiles unreadable for now: do not accept the checkpoint yet.
				w.l.logger.Warn("cannot build consistency proof for new checkpoint", "old", prev.Size, "new", cp.Size, "error", err)
				return
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prev.Size, cp.Size, p, prev.Hash, cp.Hash); err != nil {
				inconsistent = fmt.Errorf("%w: size %d is not an extension of size %d: %w", ErrInconsistent, cp.Size, prev.Size, err)
			}
		}
		// Otherwise: the same tree re-signed or newly cosigned; take the
		// newer note.
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest != prev || w.err != nil {
		return // another refresh got here first; the next poll re-reads
	}
	if inconsistent != nil {
		w.err = inconsistent
		w.l.logger.Error("checkpoint inconsistency", "error", inconsistent)
		w.releaseAll()
		return
	}
	w.latest = &Checkpoint{Origin: cp.Origin, Size: cp.Size, Hash: cp.Hash, Note: raw, Seen: time.Now()}
	w.l.metrics.setPublished(w.latest)
	for len(w.waiters) > 0 && w.waiters[0].index < cp.Size {
		close(heap.Pop(&w.waiters).(*waiter).ch)
	}
}

func (w *watcher) waiterCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiters)
}

func (w *watcher) releaseAll() {
	for _, wt := range w.waiters {
		close(wt.ch)
	}
	w.waiters = nil
}

// current returns the latest verified checkpoint.
func (w *watcher) current() (*Checkpoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if w.latest == nil {
		return nil, ErrNoCheckpoint
	}
	return w.latest, nil
}

// await blocks until a published checkpoint covers index.
func (w *watcher) await(ctx context.Context, index uint64) (*Checkpoint, error) {
	for {
		w.mu.Lock()
		if w.err != nil {
			w.mu.Unlock()
			return nil, w.err
		}
		if w.stopped {
			w.mu.Unlock()
			return nil, ErrClosed
		}
		if w.latest != nil && w.latest.Size > index {
			cp := w.latest
			w.mu.Unlock()
			return cp, nil
		}
		wt := &waiter{index: index, ch: make(chan struct{})}
		heap.Push(&w.waiters, wt)
		first := len(w.waiters) == 1
		w.mu.Unlock()
		if first {
			// Switch the watcher from idle to fast polling now.
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
		select {
		case <-wt.ch:
		case <-ctx.Done():
			w.remove(wt)
			return nil, fmt.Errorf("log: no published checkpoint covers index %d yet: %w", index, ctx.Err())
		}
	}
}

func (w *watcher) remove(wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.waiters {
		if x == wt {
			heap.Remove(&w.waiters, i)
			return
		}
	}
}

// Await returns the first published checkpoint that covers index (whose size
// is greater than index). All callers share one watcher.
func (l *Log) Await(ctx context.Context, index uint64) (*Checkpoint, error) {
	return l.watcher.await(ctx, index)
}

// Checkpoint returns the latest published checkpoint this process has
// verified.
func (l *Log) Checkpoint() (*Checkpoint, error) {
	return l.watcher.current()
}

// Healthy reports whether the log can take entries and is publishing: the
// storage answers, the published checkpoint verifies and never went
// backwards, and entries sequenced by this process are not left unpublished
// for long (a stalled checkpoint publisher, e.g. witnesses out of quorum).
func (l *Log) Healthy(ctx context.Context) error {
	if _, err := l.reader.IntegratedSize(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	cp, err := l.watcher.current()
	if err != nil {
		return err
	}
	integrated := l.metrics.integrated.Load()
	if integrated > cp.Size {
		if age := time.Since(cp.Seen); age > l.stallAfter {
			return fmt.Errorf("checkpoint publication stalled: %d entries sequenced, latest published size %d, unchanged for %s", integrated, cp.Size, age.Round(time.Second))
		}
	}
	return nil
}

// Refresh reads the published checkpoint now, rather than at the watcher's
// next poll, and returns the latest verified one: how a frontend following
// a log that other frontends append to learns of their entries promptly.
func (l *Log) Refresh(ctx context.Context) (*Checkpoint, error) {
	l.watcher.refresh(ctx)
	return l.watcher.current()
}
