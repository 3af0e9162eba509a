package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/internal/fsx"
)

// Outbox keeps signed results on disk until the log has committed them, so
// that a result whose POST /v1/results failed (server down, network, a
// crash of the broker right after the run) is not lost: it is written,
// synced, before the first attempt, removed once committed, and committed
// later by Flush (zt broker flushes at start and periodically; zt run
// flushes before it runs anything). A result the server refuses for good
// (4xx other than 429) is renamed NAME.rejected and kept for inspection.
//
// Files are named result-<sha256 of the body>.json and hold exactly the
// POST /v1/results body (ResultBody): the DSSE envelope as signed and the
// signer's chain. Re-posting a committed result is safe: the server answers
// with the entry it already committed.
type Outbox struct {
	dir    string
	logger *slog.Logger
}

// OpenOutbox opens (creating, mode 0700) the outbox directory.
//
// It files the results that courier journals left by ended processes hold
// (journal.go): after it, every result kept is a result file.
func OpenOutbox(dir string, logger *slog.Logger) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	n, err := recoverJournals(dir)
	if n > 0 {
		logger.Info("results recovered from a courier journal", "outbox", dir, "count", n)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return &Outbox{dir: dir, logger: logger}, nil
}

// Dir is the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Reporter returns a Reporter that keeps each result in the outbox until r
// has committed it.
func (o *Outbox) Reporter(r *HTTPReporter) Reporter { return &outboxReporter{o: o, r: r} }

type outboxReporter struct {
	o *Outbox
	r *HTTPReporter
}

func (or *outboxReporter) Report(ctx context.Context, s *attest.Signed) (*api.ResultResponse, error) {
	body := ResultBody(s)
	path, res, err := or.o.keep(ctx, or.r, body)
	if path == "" {
		return res, err
	}
	return or.o.send(ctx, or.r, path, body)
}

// keep puts body in the outbox and returns its path; if it cannot be kept
// (path ""), it is committed now, and the error says both failures.
func (o *Outbox) keep(ctx context.Context, r *HTTPReporter, body []byte) (string, *api.ResultResponse, error) {
	path, err := o.put(body)
	if err == nil {
		return path, nil, nil
	}
	res, _, perr := r.commit(ctx, body)
	if perr != nil {
		return "", nil, fmt.Errorf("%w; and it could not be kept in the outbox: %w", perr, err)
	}
	return "", res, nil
}

// Pending lists the results waiting to be committed.
func (o *Outbox) Pending() ([]string, error) {
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, "result-") && strings.HasSuffix(n, ".json") {
			out = append(out, filepath.Join(o.dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Flush commits every pending result through r. It stops at the first
// result that cannot be committed for now (the server is unreachable or
// overloaded) and returns how many were committed and that error; results
// refused for good are set aside as .rejected and do not stop it.
func (o *Outbox) Flush(ctx context.Context, r *HTTPReporter) (int, error) {
	return o.flush(ctx, r, nil)
}

// flush is Flush; with a courier, over the results it is not delivering
// already.
func (o *Outbox) flush(ctx context.Context, r *HTTPReporter, c *Courier) (int, error) {
	pending, err := o.Pending()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, path := range pending {
		if c != nil {
			if !c.claim(path) {
				continue
			}
			defer c.release(path)
		}
		body, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) && c != nil {
			continue // delivered meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("outbox: %w", err)
		}
		if _, err := o.send(ctx, r, path, body); err != nil {
			if errors.As(err, new(*rejectedError)) {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}

// rejectedError is a result the server refused for good.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }

// send commits the result kept at path; committed, the file is removed;
// refused for good, it becomes path.rejected.
func (o *Outbox) send(ctx context.Context, r *HTTPReporter, path string, body []byte) (*api.ResultResponse, error) {
	res, retryable, err := r.commit(ctx, body)
	switch {
	case err == nil:
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			o.logger.Warn("committed result left in the outbox (re-posting it is harmless)", "file", path, "error", rerr.Error())
		}
		return res, nil
	case retryable:
		o.logger.Warn("result kept in the outbox until the log commits it", "file", path, "error", err.Error())
		return nil, fmt.Errorf("%w (kept in %s; it is committed by the next flush)", err, path)
	default:
		o.logger.Error("the log refused a result; set aside", "file", path+".rejected", "error", err.Error())
		if rerr := os.Rename(path, path+".rejected"); rerr != nil {
			return nil, &rejectedError{fmt.Errorf("%w (and setting %s aside failed: %w)", err, path, rerr)}
		}
		return nil, &rejectedError{fmt.Errorf("%w (set aside as %s.rejected)", err, path)}
	}
}

// put writes body durably under its content name (an existing copy is
// the same result: kept as is).
func (o *Outbox) put(body []byte) (string, error) {
	path := filepath.Join(o.dir, resultName(resultSum(body)))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, fsx.WriteAtomic(path, body, 0o600)
}

// ErrQueued is what a Courier's Report returns: the result is kept in the
// outbox, written and synced to disk, and is being delivered in the
// background. It is not a failure: Report.Queued records it.
var ErrQueued = errors.New("result kept in the outbox; it is delivered in the background")

// Courier delivers the results kept in an outbox in the background, for a
// broker that answers its caller before the log has committed the result
// (the MCP gateway): Report keeps the result durably — appended to the
// courier's journal and fdatasynced (one sync, shared by concurrent
// results; journal.go), then written as the usual result file — and
// returns ErrQueued at once; the courier posts it right away from another
// goroutine (at most Parallel at a time). A result it could not deliver is
// written as a result file atomically (synced), and while the log cannot
// commit it, retried every Every. Its first pass also delivers what an
// earlier process left in the outbox (a crash between an answer and the
// delivery loses nothing: OpenOutbox files what a journal held). A result
// the log refuses for good is set aside as .rejected, as by Flush. Without
// a journal (it could not be created or written) results are kept as the
// outbox Reporter keeps them, each file written atomically.
type Courier struct {
	o        *Outbox
	r        *HTTPReporter
	ctx      context.Context
	every    time.Duration
	slots    chan struct{}
	mu       sync.Mutex
	inflight map[string]bool
	wg       sync.WaitGroup // deliveries
	stop     chan struct{}
	loop     chan struct{} // closed when the retry loop returned
	j        *journal      // nil: results are kept as synced files
}

// DefaultCourierParallel is how many results a Courier posts at once.
const DefaultCourierParallel = 32

// StartCourier starts delivering the outbox's results through r: now
// (what an earlier process left), every every (default 30s), and each
// result Report keeps as soon as it is kept. Deliveries stop when ctx
// ends; what was not delivered stays in the outbox.
func (o *Outbox) StartCourier(ctx context.Context, r *HTTPReporter, every time.Duration, parallel int) *Courier {
	if every <= 0 {
		every = 30 * time.Second
	}
	if parallel <= 0 {
		parallel = DefaultCourierParallel
	}
	c := &Courier{o: o, r: r, ctx: ctx, every: every, slots: make(chan struct{}, parallel), inflight: map[string]bool{},
		stop: make(chan struct{}), loop: make(chan struct{})}
	j, err := openJournal(o.dir)
	if err != nil {
		o.logger.Warn("no courier journal; each result is kept as a synced file", "outbox", o.dir, "error", err.Error())
	} else {
		c.j = j
	}
	go func() {
		defer close(c.loop)
		for {
			if n, err := c.pass(); err != nil {
				o.logger.Warn("results still wait in the outbox", "outbox", o.dir, "error", err.Error())
			} else if n > 0 {
				o.logger.Info("committed results from the outbox", "outbox", o.dir, "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-c.stop:
				return
			case <-time.After(c.every):
			}
		}
	}()
	return c
}

// Report keeps s in the outbox (synced) and returns ErrQueued; the courier
// delivers it. If it cannot be kept, it is committed now, as the outbox
// Reporter does.
func (c *Courier) Report(ctx context.Context, s *attest.Signed) (*api.ResultResponse, error) {
	body := ResultBody(s)
	if c.j != nil {
		sum := resultSum(body)
		err := c.j.keep(sum, body)
		if err == nil {
			path := filepath.Join(c.o.dir, resultName(sum))
			if !c.claim(path) {
				return nil, ErrQueued // the same result is being delivered
			}
			// Durable through the journal now; the delivery makes it
			// visible to the outbox's readers as a file, after the caller
			// is answered (a create and a rename cost the answer ~0.3–0.6
			// ms on this project's CI disk).
			c.deliver(path, body, sum)
			return nil, ErrQueued
		}
		c.o.logger.Warn("courier journal failed; keeping the result as a synced file", "error", err.Error())
	}
	path, res, err := c.o.keep(ctx, c.r, body)
	if path == "" {
		return res, err
	}
	if !c.claim(path) {
		return nil, ErrQueued // the same result is being delivered
	}
	c.deliver(path, body, "")
	return nil, ErrQueued
}

// deliver posts the result kept at path (claimed) from another goroutine.
// sum is its digest when it is kept in the journal: delivered or set
// aside, it is marked done there; not delivered, it is first written as a
// synced file (the retry loop delivers it), then marked done. A delivery
// cut short by the courier's end leaves it undone: Close files it.
func (c *Courier) deliver(path string, body []byte, sum string) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.release(path)
		if sum != "" {
			// Visible to the outbox's readers; durable through the journal.
			if err := writeUnsynced(path, body); err != nil {
				c.o.logger.Warn("result kept in the courier journal only", "file", path, "error", err.Error())
			}
		}
		select {
		case c.slots <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		defer func() { <-c.slots }()
		_, err := c.o.send(c.ctx, c.r, path, body)
		switch {
		case err == nil:
			c.o.logger.Debug("result committed from the outbox", "file", path)
		case sum == "" || errors.As(err, new(*rejectedError)):
		default:
			if ferr := fsx.WriteAtomic(path, body, 0o600); ferr != nil {
				c.o.logger.Error("result left in the courier journal only (filed at the next start)", "file", path, "error", ferr.Error())
				return
			}
		}
		if sum != "" {
			c.j.done(sum)
		}
	}()
}

// writeUnsynced writes body at path (by rename, so that no reader sees it
// half written), without syncing: the courier journal made it durable.
func writeUnsynced(path string, body []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+fsx.TempMarker+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Close stops the retry loop and waits for the deliveries under way: each
// ends when its result is committed, set aside, or its attempts or the
// courier's context ran out (it then stays in the outbox, as a synced
// file: Close files what its journal holds undone and removes it). Report must not
// be called after Close.
func (c *Courier) Close() {
	close(c.stop)
	<-c.loop
	c.wg.Wait()
	if c.j != nil {
		if err := c.j.close(); err != nil {
			c.o.logger.Error("courier journal not closed (filed at the next start)", "error", err.Error())
		}
	}
}

// InFlight is how many results are being delivered now.
func (c *Courier) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}

func (c *Courier) claim(path string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[path] {
		return false
	}
	c.inflight[path] = true
	return true
}

func (c *Courier) release(path string) {
	c.mu.Lock()
	delete(c.inflight, path)
	c.mu.Unlock()
}

// pass is Flush over the results not being delivered already.
func (c *Courier) pass() (int, error) { return c.o.flush(c.ctx, c.r, c) }
