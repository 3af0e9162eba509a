// Package log is ztlog's evidence log: an append-only Merkle log over
// Tessera whose checkpoints are C2SP tlog-checkpoints in Ed25519 signed
// notes and whose tree and entries are served as C2SP tlog-tiles.
//
// In-process callers use three operations:
//
//   - Append adds one entry and returns its index only once the entry is
//     durably sequenced (written and integrated, surviving a crash).
//   - Await returns the first published checkpoint that covers an index.
//     All waiters share one checkpoint watcher.
//   - InclusionProof and ConsistencyProof prove entries and growth against
//     published checkpoints.
//
// Appends are group-committed: while one batch is being written, arriving
// entries gather, and the whole gathering is handed to Tessera as the next
// batch. A lone entry is sequenced after BatchMaxAge plus one storage write;
// under load, batches grow to BatchMaxSize and throughput follows. A
// commit delay trades a little latency under load for bigger batches:
// Tessera's POSIX driver rewrites the partial entry bundle and tiles once
// per batch, so a bigger batch costs less CPU and disk per entry. By
// default the delay tunes itself to the load (see Options.CommitDelay):
// callers announce the entries they are about to append (Expect), and a
// batch waits for them only when enough are on their way, at most
// MaxAutoCommitDelay.
//
// Every failure is a typed error (ErrPushback, ErrStorage, ErrEntryTooLarge,
// ErrClosed, ...) so that callers can fail closed.
package log

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"

	"github.com/zt-infra/ztlog/log/storage"
)

// Defaults, tuned for a decision path: an entry is sequenced within a few
// milliseconds at low load and covered by a published checkpoint within
// about CheckpointInterval plus one write.
const (
	// DefaultBatchMaxSize is the most entries handed to Tessera in one batch.
	DefaultBatchMaxSize = 1024
	// DefaultBatchMaxAge is how long Tessera waits for more entries once a
	// batch has started (Tessera's own default is 250ms).
	DefaultBatchMaxAge = 250 * time.Microsecond
	// DefaultCheckpointInterval is how often a new checkpoint is signed and
	// published when the tree has grown (Tessera's own default is 10s).
	DefaultCheckpointInterval = 500 * time.Millisecond
	// DefaultMaxPending is how many entries may wait to be sequenced before
	// Append answers ErrPushback.
	DefaultMaxPending = 16384
	// DefaultCommitSiblings is how many entries must be waiting before a
	// CommitDelay applies.
	DefaultCommitSiblings = 8
	// MaxCommitDelay bounds CommitDelay: it is a wait added to appends.
	MaxCommitDelay = 100 * time.Millisecond
	// CommitDelayOff, as Options.CommitDelay, turns the commit delay off:
	// a batch is handed to storage as soon as the previous one is done.
	CommitDelayOff time.Duration = -1
	// MaxAutoCommitDelay bounds the self-tuned commit delay (CommitDelay
	// zero): a batch waits for announced entries at most this long.
	MaxAutoCommitDelay = 5 * time.Millisecond
	// DefaultAwaitPoll is how often the shared watcher reads the checkpoint
	// while someone is waiting for one.
	DefaultAwaitPoll = 10 * time.Millisecond
	// idlePoll is how often it reads it when nobody waits (for metrics).
	idlePoll = time.Second
)

// Options configure Open. Backend and Key are required.
type Options struct {
	// Backend is the opened storage (storage.New).
	Backend *storage.Backend
	// Key signs checkpoints; its name is the log's origin.
	Key *Key
	// BatchMaxSize, BatchMaxAge, CheckpointInterval, MaxPending and AwaitPoll
	// default to the Default* constants when zero.
	BatchMaxSize       uint
	BatchMaxAge        time.Duration
	CheckpointInterval time.Duration
	MaxPending         int
	AwaitPoll          time.Duration
	// CommitDelay lets a batch grow under load.
	//
	// Zero (the default) tunes the delay to the load. When the committer
	// collects a batch that already holds CommitSiblings entries (they
	// gathered while the previous batch was committed: the load is
	// evident), it waits, as a fixed delay does, for more, until
	// BatchMaxSize are waiting or for at most MaxAutoCommitDelay. When
	// fewer are waiting but at least CommitSiblings more are announced
	// (Expect: decisions being made that will append), it waits for the
	// announced ones, with the same bound. Otherwise it does not wait: at
	// light load every entry is handed to storage at once, and under load,
	// when the decision path is CPU-bound, batches grow to cut the
	// per-batch cost.
	//
	// Positive: a fixed delay; when at least CommitSiblings entries are
	// waiting, the committer waits up to CommitDelay for more (until
	// BatchMaxSize are waiting). CommitDelayOff: no delay.
	// CommitSiblings defaults to DefaultCommitSiblings.
	CommitDelay    time.Duration
	CommitSiblings int
	// Witnesses, when set, must cosign each checkpoint before it is
	// published (see tessera.WithWitnesses).
	Witnesses      *tessera.WitnessGroup
	WitnessOptions *tessera.WitnessOptions
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the log's Prometheus metrics. Default: none.
	Registerer prometheus.Registerer
}

// Log is an open evidence log.
type Log struct {
	// witnesses is the group every published checkpoint must satisfy (nil:
	// unwitnessed).
	witnesses *tessera.WitnessGroup
	origin    string
	key       *Key
	backend   *storage.Backend
	appender  *tessera.Appender
	reader    tessera.LogReader
	shutdown  func(context.Context) error
	cancel    context.CancelFunc
	logger    *slog.Logger
	metrics   *metrics
	watcher   *watcher

	maxBatch       int
	maxPending     int
	commitSiblings int
	// stallAfter is how long sequenced entries may stay unpublished before
	// Healthy reports the publisher stalled.
	stallAfter time.Duration

	// expected counts the entries callers announced (Expect) and have not
	// appended yet.
	expected atomic.Int64

	mu          sync.Mutex
	commitDelay time.Duration // under mu: tests lengthen it
	// autoDelay bounds the self-tuned delay (MaxAutoCommitDelay; under mu:
	// tests lengthen it).
	autoDelay time.Duration
	pending   []*pendingEntry
	closed    bool
	wake      chan struct{}
	stopped   chan struct{} // closed when the committer has exited
}

type pendingEntry struct {
	entry *tessera.Entry
	start time.Time
	done  chan appendResult
}

type appendResult struct {
	index uint64
	err   error
}

// Open starts the log over an opened backend. If the storage already holds a
// log, its published checkpoint must carry the origin and a valid signature
// of opts.Key; anything else is ErrWrongLog and nothing is written.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Backend == nil || opts.Key == nil {
		return nil, errors.New("log: Open needs a backend and a key")
	}
	o := opts
	switch {
	case o.BatchMaxAge < 0:
		return nil, fmt.Errorf("log: batch max age %s is negative (0 takes the default, %s)", o.BatchMaxAge, DefaultBatchMaxAge)
	case o.CheckpointInterval < 0:
		return nil, fmt.Errorf("log: checkpoint interval %s is negative (0 takes the default, %s)", o.CheckpointInterval, DefaultCheckpointInterval)
	case o.MaxPending < 0:
		// Every append would be pushed back while the service looks ready.
		return nil, fmt.Errorf("log: max pending %d is negative (0 takes the default, %d)", o.MaxPending, DefaultMaxPending)
	case o.AwaitPoll < 0:
		return nil, fmt.Errorf("log: await poll %s is negative", o.AwaitPoll)
	}
	// A zero option takes its default.
	o.BatchMaxSize = cmp.Or(o.BatchMaxSize, DefaultBatchMaxSize)
	o.BatchMaxAge = cmp.Or(o.BatchMaxAge, DefaultBatchMaxAge)
	o.CheckpointInterval = cmp.Or(o.CheckpointInterval, DefaultCheckpointInterval)
	o.MaxPending = cmp.Or(o.MaxPending, DefaultMaxPending)
	o.AwaitPoll = cmp.Or(o.AwaitPoll, DefaultAwaitPoll)
	if (o.CommitDelay < 0 && o.CommitDelay != CommitDelayOff) || o.CommitDelay > MaxCommitDelay {
		return nil, fmt.Errorf("log: commit delay %s out of range (0 to %s)", o.CommitDelay, MaxCommitDelay)
	}
	if o.CommitSiblings < 0 {
		return nil, fmt.Errorf("log: commit siblings %d is negative", o.CommitSiblings)
	}
	o.CommitSiblings = cmp.Or(o.CommitSiblings, DefaultCommitSiblings)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if min := o.Backend.MinCheckpointInterval; o.CheckpointInterval < min {
		o.Logger.Warn("checkpoint interval raised to the storage driver's minimum",
			"asked", o.CheckpointInterval.String(), "used", min.String(), "storage", o.Backend.Describe)
		o.CheckpointInterval = min
	}
	origin := o.Key.Origin()
	if err := validOrigin(origin); err != nil {
		return nil, err
	}
	if err := checkExisting(ctx, o.Backend, o.Key); err != nil {
		return nil, err
	}
	existing, rerr := o.Backend.ReadCheckpoint(ctx)
	fresh := errors.Is(rerr, os.ErrNotExist)
	// An existing log under a witness policy it was not published under:
	// its checkpoint is not cosigned. Tessera publishes only when the tree
	// grows, so have it republish the same size, now with the quorum's
	// cosignatures; until then the readiness check says so.
	republish := o.Witnesses != nil && rerr == nil && !o.Witnesses.Satisfied(existing)

	aopts := tessera.NewAppendOptions().
		WithCheckpointSigner(o.Key.Signer).
		WithBatching(o.BatchMaxSize, o.BatchMaxAge).
		WithCheckpointInterval(o.CheckpointInterval).
		// The committer bounds what is in flight; Tessera must not refuse
		// a batch it has been handed.
		WithPushback(uint(o.MaxPending) + o.BatchMaxSize)
	if o.Witnesses != nil {
		aopts = aopts.WithWitnesses(*o.Witnesses, o.WitnessOptions)
	}
	if republish {
		o.Logger.Warn("the published checkpoint does not meet the witness policy; it is republished with the quorum's cosignatures as soon as they come",
			"storage", o.Backend.Describe)
		aopts = aopts.WithCheckpointRepublishInterval(o.CheckpointInterval)
	}
	bg, cancel := context.WithCancel(context.Background())
	appender, shutdown, reader, err := tessera.NewAppender(bg, o.Backend.Driver, aopts)
	if err != nil {
		cancel()
		if o.Witnesses != nil && strings.Contains(err.Error(), "witness policy was not satisfied") {
			return nil, witnessStartError(o.Backend.Describe, err)
		}
		return nil, fmt.Errorf("%w: start appender on %s: %s", ErrStorage, o.Backend.Describe, oneLine(err.Error()))
	}
	l := &Log{
		origin:         origin,
		key:            o.Key,
		backend:        o.Backend,
		appender:       appender,
		reader:         reader,
		shutdown:       shutdown,
		cancel:         cancel,
		logger:         o.Logger.With("component", "log", "origin", origin),
		maxBatch:       int(o.BatchMaxSize),
		maxPending:     o.MaxPending,
		commitDelay:    o.CommitDelay,
		autoDelay:      MaxAutoCommitDelay,
		commitSiblings: o.CommitSiblings,
		stallAfter:     10*o.CheckpointInterval + 5*time.Second,
		witnesses:      o.Witnesses,
		wake:           make(chan struct{}, 1),
		stopped:        make(chan struct{}),
	}
	l.metrics = newMetrics(o.Registerer, l)
	l.watcher = newWatcher(bg, l, o.AwaitPoll)
	go l.commit(bg)
	if o.Witnesses != nil && fresh {
		// A new witnessed log serves only once its first checkpoint is
		// cosigned and published. Tessera returns that error from
		// NewAppender the first time only; on a later start over the same
		// directory it retries in the background, so wait for it here.
		wait := 5*o.CheckpointInterval + witnessTimeout(o.WitnessOptions) + 2*time.Second
		if err := awaitFirstCheckpoint(ctx, o.Backend, wait); err != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			l.Close(cctx)
			ccancel()
			return nil, witnessStartError(o.Backend.Describe, err)
		}
	}
	l.logger.Info("log open", "storage", o.Backend.Describe, "verifier_key", o.Key.VerifierKey,
		"batch_max_size", o.BatchMaxSize, "batch_max_age", o.BatchMaxAge.String(),
		"checkpoint_interval", o.CheckpointInterval.String(),
		"commit_delay", CommitDelayText(o.CommitDelay), "commit_siblings", o.CommitSiblings)
	return l, nil
}

// CheckpointWitnessed is a readiness check for a witnessed log: it fails
// while the published checkpoint lacks the cosignatures the witness group
// needs (an existing log put under a witness policy, until the checkpoint
// is republished cosigned; or a fail-open publication).
func (l *Log) CheckpointWitnessed(ctx context.Context) error {
	if l.witnesses == nil {
		return nil
	}
	// The checkpoint the log serves (verified, as /log/checkpoint and the
	// proofs answer with it), not the storage's file.
	cp, err := l.Checkpoint()
	if err != nil {
		return fmt.Errorf("no published checkpoint: %w", err)
	}
	raw := cp.Note
	if !l.witnesses.Satisfied(raw) {
		size := "?"
		if lines := strings.SplitN(string(raw), "\n", 3); len(lines) > 1 {
			size = lines[1]
		}
		return fmt.Errorf("the published checkpoint (size %s) is not cosigned by the witness policy's quorum; clients verifying it under the policy refuse it until a cosigned one is published", size)
	}
	return nil
}

// witnessStartError says that a new log could not publish its first
// checkpoint for want of the witnesses' cosignatures.
func witnessStartError(where string, err error) error {
	return fmt.Errorf("%w: the new log on %s cannot publish its first checkpoint: witness policy was not satisfied (%s); start the witnesses or fix the witness policy, then start again",
		ErrWitness, where, oneLine(err.Error()))
}

func witnessTimeout(o *tessera.WitnessOptions) time.Duration {
	if o != nil && o.Timeout > 0 {
		return o.Timeout
	}
	return tessera.DefaultWitnessTimeout
}

// awaitFirstCheckpoint waits until b has a published checkpoint.
func awaitFirstCheckpoint(ctx context.Context, b *storage.Backend, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		_, err := b.ReadCheckpoint(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no checkpoint published within %s", wait)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// oneLine folds a multi-line error text (Tessera's witness errors list one
// failure per line) into one line.
func oneLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if !strings.Contains(s, "\n") {
		return s
	}
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " | ")
}

// checkExisting refuses storage whose published checkpoint is not this log's.
func checkExisting(ctx context.Context, b *storage.Backend, k *Key) error {
	raw, err := b.ReadCheckpoint(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: read existing checkpoint from %s: %w", ErrStorage, b.Describe, err)
	}
	var unverified flog.Checkpoint
	if _, err := unverified.Unmarshal(raw); err != nil {
		return fmt.Errorf("%w: %s has a checkpoint that does not parse (%w); refusing to write over it", ErrWrongLog, b.Describe, err)
	}
	if unverified.Origin != k.Origin() {
		return fmt.Errorf("%w: %s holds the log %q, but the key is for %q; use that log's key and origin, or another data directory", ErrWrongLog, b.Describe, unverified.Origin, k.Origin())
	}
	if _, _, _, err := flog.ParseCheckpoint(raw, k.Origin(), k.Verifier); err != nil {
		return fmt.Errorf("%w: %s holds a log %q whose checkpoint is not signed by the key %s; use the key that created it, or another data directory", ErrWrongLog, b.Describe, k.Origin(), k.VerifierKey)
	}
	return nil
}

// Origin is the log's origin line.
func (l *Log) Origin() string { return l.origin }

// VerifierKey is the log's checkpoint verifier key in signed-note text form.
func (l *Log) VerifierKey() string { return l.key.VerifierKey }

// Key is the log's checkpoint key.
func (l *Log) Key() *Key { return l.key }

// Expect announces an entry the caller is about to append (a decision
// being made): the self-tuned commit delay lets a batch wait for announced
// entries. The caller calls done when it appends the entry, or gives up;
// done may be called more than once (only the first counts).
func (l *Log) Expect() (done func()) {
	l.expected.Add(1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			l.expected.Add(-1)
		}
	}
}

// ParseCommitDelay reads a commit delay as an operator writes it: "auto"
// (or "") is the self-tuned delay (0), "off" is CommitDelayOff, anything
// else a duration ("4ms"); a zero duration ("0", "0s") is off, as it was
// before the delay tuned itself.
func ParseCommitDelay(s string) (time.Duration, error) {
	switch s {
	case "", "auto":
		return 0, nil
	case "off":
		return CommitDelayOff, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("commit delay %q: want auto, off or a duration such as 4ms", s)
	}
	if d == 0 {
		return CommitDelayOff, nil
	}
	return d, nil
}

// CommitDelayText is a commit delay as ParseCommitDelay reads it.
func CommitDelayText(d time.Duration) string {
	switch d {
	case 0:
		return "auto"
	case CommitDelayOff:
		return "off"
	}
	return d.String()
}

// Append adds one entry and returns its index once the entry is durably
// sequenced. If ctx ends first, Append returns ctx's error; the entry may
// still be sequenced later, so the caller must treat it as uncommitted and
// never as a success.
func (l *Log) Append(ctx context.Context, entry []byte) (uint64, error) {
	return l.AppendThen(ctx, entry, nil)
}

// AppendThen is Append for a caller that must learn the fate of an entry
// it stopped waiting for: when ctx ends before the entry is sequenced, it
// returns ctx's error as Append does, and later calls late once (from
// another goroutine) with the entry's index, or the error that kept it out
// of the log. late is not called when AppendThen returns the outcome
// itself. A service that promises one entry per request (one result per
// decision) or keeps state that mirrors the log (the agent registry) uses
// it so that an abandoned entry sequenced later is not appended twice or
// left unapplied.
func (l *Log) AppendThen(ctx context.Context, entry []byte, late func(index uint64, err error)) (uint64, error) {
	switch {
	case len(entry) == 0:
		l.metrics.appends.WithLabelValues("invalid").Inc()
		return 0, ErrEmptyEntry
	case len(entry) > tessera.DefaultEntrySizeLimit:
		l.metrics.appends.WithLabelValues("too_large").Inc()
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d (C2SP tlog-tiles)", ErrEntryTooLarge, len(entry), tessera.DefaultEntrySizeLimit)
	}
	// Tessera hashes the entry now and writes its bytes when the batch is
	// sequenced: it gets its own copy, so a caller that stops waiting may
	// reuse its buffer without changing what the log stores.
	p := &pendingEntry{entry: tessera.NewEntry(bytes.Clone(entry)), start: time.Now(), done: make(chan appendResult, 1)}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		l.metrics.appends.WithLabelValues("closed").Inc()
		return 0, ErrClosed
	case len(l.pending) >= l.maxPending:
		l.mu.Unlock()
		l.metrics.appends.WithLabelValues("pushback").Inc()
		return 0, fmt.Errorf("%w (%d waiting)", ErrPushback, l.maxPending)
	}
	l.pending = append(l.pending, p)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		l.metrics.appends.WithLabelValues("abandoned").Inc()
		if late != nil {
			go func() {
				r := <-p.done
				late(r.index, r.err)
			}()
		}
		return 0, fmt.Errorf("%w: %w", ErrAbandoned, ctx.Err())
	}
}

// commit is the group committer: it hands everything pending to Tessera as
// one batch, waits until the batch is sequenced, answers its callers, and
// repeats. It exits once the log is closed and nothing is pending.
func (l *Log) commit(ctx context.Context) {
	defer close(l.stopped)
	for {
		l.gather()
		l.mu.Lock()
		n := min(len(l.pending), l.maxBatch)
		batch := l.pending[:n:n]
		l.pending = l.pending[n:]
		if len(l.pending) == 0 {
			l.pending = nil // let the backing array go
		}
		closed := l.closed
		l.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			select {
			case <-l.wake:
			case <-ctx.Done():
			}
			continue
		}
		if ctx.Err() != nil {
			// The log was torn down (Close ran out of time): what is
			// left is answered at once instead of waiting forever.
			tornDown(batch)
			continue
		}
		l.sequence(ctx, batch)
	}
}

// errTornDown answers entries still pending when Close ran out of time.
// Their fate is unknown: Tessera may have sequenced some of them.
var errTornDown = fmt.Errorf("%w: the log was closed before the entry's sequencing was confirmed (it may still be in the log)", ErrClosed)

// tornDown answers every entry of batch with errTornDown.
func tornDown(batch []*pendingEntry) {
	for _, p := range batch {
		p.answer(appendResult{err: errTornDown})
	}
}

// answer gives the entry's outcome to its caller; only the first counts
// (a batch abandoned by a torn-down log is answered once, whatever its
// futures do later).
func (p *pendingEntry) answer(r appendResult) {
	select {
	case p.done <- r:
	default:
	}
}

// gather applies the commit delay: a fixed one (commitDelay positive), or
// the self-tuned one (zero); see Options.CommitDelay.
func (l *Log) gather() {
	l.mu.Lock()
	n, closed, delay, bound := len(l.pending), l.closed, l.commitDelay, l.autoDelay
	l.mu.Unlock()
	if delay < 0 || closed || n == 0 || n >= l.maxBatch || (delay > 0 && n < l.commitSiblings) {
		return
	}
	target := l.maxBatch
	if delay == 0 {
		// Self-tuned: wait only for entries announced as coming, when
		// enough are, until they are all waiting or the bound.
		coming := int(l.expected.Load())
		switch {
		case n >= l.commitSiblings:
			// Load is evident: this many gathered while the last batch
			// was committed. Wait, as a fixed delay does, for more.
		case coming >= l.commitSiblings:
			target = min(l.maxBatch, n+coming)
		default:
			return
		}
		delay = bound
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return
		case <-l.wake:
			l.mu.Lock()
			done := len(l.pending) >= target || l.closed
			l.mu.Unlock()
			if done {
				return
			}
		}
	}
}

func (l *Log) sequence(ctx context.Context, batch []*pendingEntry) {
	futures := make([]tessera.IndexFuture, len(batch))
	for i, p := range batch {
		futures[i] = l.appender.Add(ctx, p.entry)
	}
	l.metrics.batchSize.Observe(float64(len(batch)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.resolve(batch, futures)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// Tessera stops with the log's context and its futures may never
		// resolve: answer the batch now.
		tornDown(batch)
	}
}

// resolve waits for a batch's futures and answers each entry.
func (l *Log) resolve(batch []*pendingEntry, futures []tessera.IndexFuture) {
	var highest uint64
	for i, f := range futures {
		idx, err := f()
		p := batch[i]
		if err != nil {
			kind := ErrStorage
			label := "storage_error"
			if errors.Is(err, tessera.ErrPushback) {
				kind, label = ErrPushback, "pushback"
			}
			l.metrics.appends.WithLabelValues(label).Inc()
			l.logger.Error("append failed", "error", err)
			p.answer(appendResult{err: fmt.Errorf("%w: %w", kind, err)})
			continue
		}
		l.metrics.appends.WithLabelValues("ok").Inc()
		l.metrics.sequencing.Observe(time.Since(p.start).Seconds())
		highest = max(highest, idx.Index+1)
		p.answer(appendResult{index: idx.Index})
	}
	l.metrics.setIntegrated(highest)
}

// Close stops accepting entries, waits until every entry already accepted is
// sequenced and covered by a published checkpoint (or ctx ends), and stops
// the log's background work.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if already {
		return ErrClosed
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	var err error
	select {
	case <-l.stopped:
		err = l.shutdown(ctx)
	case <-ctx.Done():
		err = ctx.Err()
		// Out of time: tear down, and let the committer answer every
		// entry still pending (errTornDown) before returning.
		l.cancel()
		<-l.stopped
	}
	l.watcher.stop()
	l.cancel()
	if l.backend.Close != nil {
		err = errors.Join(err, l.backend.Close())
	}
	if err != nil {
		return fmt.Errorf("log: close: %w", err)
	}
	l.logger.Info("log closed")
	return nil
}

// Closed is closed once the log is closed (Close has stopped its
// committer): goroutines that follow the log stop then.
func (l *Log) Closed() <-chan struct{} { return l.stopped }
