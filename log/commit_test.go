package log

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zt-infra/ztlog/log/storage/posix"
)

// batches returns how many batches the log has handed to storage and how
// many entries they held, from its ztlog_log_batch_entries histogram.
func batches(t *testing.T, reg *prometheus.Registry) (count uint64, entries float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ztlog_log_batch_entries" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no ztlog_log_batch_entries metric")
	return 0, 0
}

// openDelayedLog opens a log with the given commit siblings and batch size
// (0: default) whose commit delay is an hour: a test that waited for it
// would time out.
func openDelayedLog(t *testing.T, siblings int, maxBatch uint) (*Log, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l := openTestLog(t, t.TempDir(), testKey(t, testOrigin), func(o *Options) {
		o.CommitDelay, o.CommitSiblings, o.BatchMaxSize, o.Registerer = MaxCommitDelay, siblings, maxBatch, reg
	})
	l.mu.Lock()
	l.commitDelay = time.Hour
	l.mu.Unlock()
	return l, reg
}

// With a commit delay, entries that trickle in while the first one waits
// join its batch; the batch goes out as soon as it is full, not after the
// delay (an hour here: the test would time out).
func TestCommitDelayGrowsTheBatch(t *testing.T) {
	l, reg := openDelayedLog(t, 1, 8)
	defer closeLog(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	add := func(i int) {
		defer wg.Done()
		if _, err := l.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			errs <- err
		}
	}
	wg.Add(1)
	go add(0)
	// Let the committer take up the first entry and start waiting; the
	// others arrive during its delay.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
	}
	for i := 1; i < 8; i++ {
		wg.Add(1)
		go add(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, e := batches(t, reg); n != 1 || e != 8 {
		t.Fatalf("%d batches holding %v entries, want one batch of 8", n, e)
	}
}

// Fewer waiting entries than CommitSiblings are not delayed: a lone entry
// is sequenced alone, not after the delay (an hour here: the test would
// time out).
func TestCommitDelaySparesALoneEntry(t *testing.T) {
	l, reg := openDelayedLog(t, 2, 0)
	defer closeLog(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := l.Append(ctx, fmt.Appendf(nil, "lone %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, e := batches(t, reg); n != 3 || e != 3 {
		t.Fatalf("%d batches holding %v entries, want three batches of one", n, e)
	}
}

func TestCommitDelayRange(t *testing.T) {
	for _, c := range []struct {
		delay    time.Duration
		siblings int
		want     string
	}{
		{-time.Millisecond, 0, "commit delay -1ms out of range"},
		{time.Second, 0, "commit delay 1s out of range (0 to 100ms)"},
		{time.Millisecond, -1, "commit siblings -1 is negative"},
	} {
		b, err := posix.Open(context.Background(), posix.Config{Dir: t.TempDir()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(context.Background(), Options{Backend: b, Key: testKey(t, testOrigin), CommitDelay: c.delay, CommitSiblings: c.siblings, Logger: quietLogger})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("delay %s siblings %d: %v, want %q", c.delay, c.siblings, err, c.want)
		}
	}
}

// openAutoDelayedLog opens a log with the self-tuned commit delay (the
// default) and the given commit siblings, whose delay bounds are an hour:
// a test that waited for the bound would time out.
func openAutoDelayedLog(t *testing.T, siblings int) (*Log, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l := openTestLog(t, t.TempDir(), testKey(t, testOrigin), func(o *Options) {
		o.CommitSiblings, o.Registerer = siblings, reg
	})
	l.mu.Lock()
	l.autoDelay = time.Hour
	l.mu.Unlock()
	return l, reg
}

// With the self-tuned delay, a batch waits for the entries its callers
// announced (Expect): eight decisions announced, the first appended alone,
// the other seven trickling in, make one batch of eight, which goes out as
// soon as the last announced entry is there, not after the bound (an hour
// here: the test would time out).
func TestAutoCommitDelayWaitsForAnnouncedEntries(t *testing.T) {
	l, reg := openAutoDelayedLog(t, 2)
	defer closeLog(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var dones []func()
	for range 8 {
		dones = append(dones, l.Expect())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	add := func(i int) {
		defer wg.Done()
		dones[i]()
		if _, err := l.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			errs <- err
		}
	}
	wg.Add(1)
	go add(0)
	for i := 1; i < 8; i++ {
		time.Sleep(2 * time.Millisecond)
		wg.Add(1)
		go add(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, e := batches(t, reg); n != 1 || e != 8 {
		t.Fatalf("%d batches holding %v entries, want one batch of 8", n, e)
	}
}

// With the self-tuned delay, entries nobody announced are never delayed:
// three lone appends are three batches, not one wait for the bound (an
// hour here: the test would time out). An announcement withdrawn (done
// without an append, twice) leaves nothing announced.
func TestAutoCommitDelaySparesUnannouncedEntries(t *testing.T) {
	l, reg := openAutoDelayedLog(t, 2)
	defer closeLog(t, l)
	done := l.Expect()
	done()
	done()
	if got := l.expected.Load(); got != 0 {
		t.Fatalf("%d entries announced after the only announcement was withdrawn twice, want 0", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := l.Append(ctx, fmt.Appendf(nil, "lone %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, e := batches(t, reg); n != 3 || e != 3 {
		t.Fatalf("%d batches holding %v entries, want three batches of one", n, e)
	}
}

func TestParseCommitDelay(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{{"", 0}, {"auto", 0}, {"off", CommitDelayOff}, {"4ms", 4 * time.Millisecond}, {"0", CommitDelayOff}, {"0s", CommitDelayOff}} {
		got, err := ParseCommitDelay(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got != c.want {
			t.Errorf("%q: %s, want %s", c.in, got, c.want)
		}
		if (c.in == "auto" || c.in == "off" || c.in == "4ms") && CommitDelayText(got) != c.in {
			t.Errorf("%q reads back as %q", c.in, CommitDelayText(got))
		}
	}
	if _, err := ParseCommitDelay("soon"); err == nil || !strings.Contains(err.Error(), "want auto, off or a duration") {
		t.Errorf("soon: %v, want an error naming what is accepted", err)
	}
}

// gatherLog is a Log with only what gather reads: n entries waiting,
// nothing announced, the self-tuned delay bounded by bound.
func gatherLog(n, siblings, maxBatch int, bound time.Duration) *Log {
	return &Log{pending: make([]*pendingEntry, n), commitSiblings: siblings, maxBatch: maxBatch,
		autoDelay: bound, wake: make(chan struct{}, 1)}
}

// With the self-tuned delay, a batch that already holds CommitSiblings
// entries (the load is evident) waits for more, as a fixed delay does,
// until the bound.
func TestAutoCommitDelayWaitsUnderEvidentLoad(t *testing.T) {
	const bound = 50 * time.Millisecond
	l := gatherLog(8, 8, 1000, bound)
	start := time.Now()
	l.gather()
	if took := time.Since(start); took < bound {
		t.Fatalf("a batch of 8 (siblings 8) went out after %s, want a wait of the bound %s", took, bound)
	}
}

// Waiting under evident load ends as soon as a full batch is waiting, not
// at the bound (an hour here: the test would time out).
func TestAutoCommitDelayEndsAtAFullBatch(t *testing.T) {
	l := gatherLog(8, 8, 16, time.Hour)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.gather()
	}()
	l.mu.Lock()
	l.pending = append(l.pending, make([]*pendingEntry, 8)...)
	l.mu.Unlock()
	l.wake <- struct{}{}
	<-done
}

// Fewer waiting than CommitSiblings and nothing announced: no wait at all
// (the bound is an hour: the test would time out).
func TestAutoCommitDelaySparesLightLoad(t *testing.T) {
	gatherLog(7, 8, 1000, time.Hour).gather()
}
