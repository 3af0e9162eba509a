package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/httpread"
	"github.com/zt-infra/ztlog/verifier/history"
)

// maxCorrelationID is the longest correlation id an entry holds.
const maxCorrelationID = 256

// historyIndex builds the verifiable history index (verifier/history/
// history.md) by following the log's published checkpoints, from entry 0
// at start (the log is its only state: a restart rebuilds it), and serves
// GET /v1/history and GET /v1/history/checkpoint.
type historyIndex struct {
	l        *ztlog.Log
	interval time.Duration
	indexed  prometheus.Gauge
	logger   interface{ Warn(string, ...any) }
	// broken, once set, is why the index stopped (a bug: a panic while
	// applying or snapshotting); the decision path and the log go on.
	broken error

	mu  sync.Mutex
	x   *history.Index
	cur *historyAt // nil until the first checkpoint is indexed
	// snapped is when the last snapshot was made and cost how long it
	// took: the next is made no sooner than snapshotBudget times that
	// later, so rebuilding the map tree (O(keys)) takes at most a fifth of
	// a core however fast checkpoints come.
	snapped time.Time
	cost    time.Duration
}

// snapshotBudget: a snapshot is made at most every snapshotBudget times
// its own cost.
const snapshotBudget = 5

// historyAt is the index at one published checkpoint.
type historyAt struct {
	snap       *history.Snapshot
	checkpoint []byte // the log checkpoint, verbatim
	note       []byte // the signed index checkpoint
}

func newHistoryIndex(s *Service, interval time.Duration) *historyIndex {
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	h := &historyIndex{l: s.log, interval: interval, logger: s.logger,
		x: history.New(history.Options{KeepIndices: true, KeepTree: true}),
		indexed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztlog_history_indexed_size",
			Help: "Log size the history index (GET /v1/history) answers for."})}
	s.registry.MustRegister(h.indexed)
	s.router.HandleFunc("/v1/history", h.serve).Methods(http.MethodGet)
	s.router.HandleFunc("/v1/history/checkpoint", h.serveCheckpoint).Methods(http.MethodGet)
	return h
}

// run follows the log until ctx ends. A panic stops the index, never the
// process: the history is an auditor's convenience, the log is the evidence.
func (h *historyIndex) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	defer func() {
		if r := recover(); r != nil {
			h.mu.Lock()
			h.broken, h.cur = fmt.Errorf("the history index stopped on an internal error (%v); restart the server to rebuild it from the log", r), nil
			h.mu.Unlock()
			h.logger.Warn("history index stopped", "error", fmt.Sprint(r))
		}
	}()
	for {
		if err := h.step(ctx); err != nil && ctx.Err() == nil {
			h.logger.Warn("history index: following the log", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step applies the entries a newer published checkpoint adds and signs
// the index checkpoint for it.
func (h *historyIndex) step(ctx context.Context) error {
	cp, err := h.l.Refresh(ctx)
	if errors.Is(err, ztlog.ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	next := h.x.Size()
	same := h.cur != nil && h.cur.snap.Size == cp.Size
	h.mu.Unlock()
	if same || cp.Size < next {
		return nil
	}
	if cp.Size == next && h.cur != nil && time.Since(h.snapped) < snapshotBudget*h.cost {
		return nil
	}
	err = h.l.Scan(ctx, next, cp.Size, func(i uint64, leaf []byte) error {
		h.mu.Lock()
		h.x.Apply(leaf)
		h.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil && time.Since(h.snapped) < snapshotBudget*h.cost {
		return nil // the entries are applied; the next step snapshots them
	}
	start := time.Now()
	snap := h.x.Snapshot()
	h.snapped, h.cost = time.Now(), time.Since(start)
	ic := h.x.IndexCheckpoint(h.l.Origin(), snap)
	if string(ic.LogRoot[:]) != string(cp.Hash) {
		return fmt.Errorf("the %d entries read hash to another root than the checkpoint's: not indexed", cp.Size)
	}
	signed, err := ic.Sign(h.l.Key().Signer)
	if err != nil {
		return err
	}
	h.cur = &historyAt{snap: snap, checkpoint: cp.Note, note: signed}
	h.indexed.Set(float64(cp.Size))
	return nil
}

func (h *historyIndex) current(w http.ResponseWriter) *historyAt {
	h.mu.Lock()
	cur, broken := h.cur, h.broken
	h.mu.Unlock()
	if broken != nil {
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "index_broken", Message: broken.Error()})
		return nil
	}
	if cur == nil {
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "index_not_ready",
			Message: "the history index has not indexed a checkpoint yet (an empty log, or rebuilding after a start); retry shortly"})
	}
	return cur
}

func (h *historyIndex) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	cur := h.current(w)
	if cur == nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(cur.note)
}

// historyKey reads the query's key (history.md, "GET /v1/history"), or
// writes the error and returns "".
func historyKey(w http.ResponseWriter, r *http.Request) string {
	q := r.URL.Query()
	for name := range q {
		if name != "agent" && name != "correlation_id" && name != "size" {
			httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "unknown_parameter", Field: name,
				Message: fmt.Sprintf("unknown query parameter %q: give agent=<SPIFFE ID> or correlation_id=<id>, and optionally size=<N>", text.Cut(name, 40))})
			return ""
		}
		if len(q[name]) > 1 {
			httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "bad_query", Field: name, Message: fmt.Sprintf("%s is given %d times; give it once", name, len(q[name]))})
			return ""
		}
	}
	agent, corr := q.Has("agent"), q.Has("correlation_id")
	switch {
	case agent == corr:
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "bad_query", Field: "agent",
			Message: "give exactly one of agent=<SPIFFE ID> and correlation_id=<id>"})
		return ""
	case agent:
		id := q.Get("agent")
		if err := entry.ValidSPIFFEID(id); err != nil {
			httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "invalid_field", Field: "agent",
				Message: fmt.Sprintf("agent %q: %v (want spiffe://<trust domain>/<path>)", text.Cut(id, 80), err)})
			return ""
		}
		return history.AgentKey(id)
	}
	c := q.Get("correlation_id")
	msg := text.RefusedMessage(c)
	switch {
	case c == "":
		msg = "is empty"
	case len(c) > maxCorrelationID:
		msg = fmt.Sprintf("is longer than %d bytes, so no entry carries it", maxCorrelationID)
	}
	if msg != "" {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "invalid_field", Field: "correlation_id",
			Message: "correlation_id " + msg})
		return ""
	}
	return history.CorrelationKey(c)
}

func (h *historyIndex) serve(w http.ResponseWriter, r *http.Request) {
	key := historyKey(w, r)
	if key == "" {
		return
	}
	cur := h.current(w)
	if cur == nil {
		return
	}
	if s := r.URL.Query().Get("size"); r.URL.Query().Has("size") {
		n, ok := httpread.ParseUint(w, "size", s)
		if !ok {
			return
		}
		if n != cur.snap.Size {
			httperr.WriteError(w, http.StatusConflict, &httperr.Error{Code: "size_not_indexed", Field: "size",
				Message: fmt.Sprintf("the history index answers for size %d, not %d: ask for size=%d (or omit size)", cur.snap.Size, n, cur.snap.Size)})
			return
		}
	}
	h.mu.Lock()
	a, err := h.x.Answer(key, cur.snap, cur.checkpoint, cur.note, func(idx []uint64) ([][]byte, error) {
		return readLeaves(r.Context(), h.l, idx, cur.snap.Size)
	})
	h.mu.Unlock()
	if err != nil {
		httpread.WriteLogError(w, err, "")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, a)
}

// readLeaves reads the entries at the sorted indices below size, one
// entry bundle at a time.
func readLeaves(ctx context.Context, l *ztlog.Log, idx []uint64, size uint64) ([][]byte, error) {
	out := make([][]byte, 0, len(idx))
	for k := 0; k < len(idx); {
		b := idx[k] / layout.EntryBundleWidth
		lo, hi := b*layout.EntryBundleWidth, min((b+1)*layout.EntryBundleWidth, size)
		err := l.Scan(ctx, lo, hi, func(i uint64, leaf []byte) error {
			if k < len(idx) && idx[k] == i {
				out = append(out, leaf)
				k++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if k < len(idx) && idx[k]/layout.EntryBundleWidth == b {
			return nil, fmt.Errorf("%w: entry %d is missing from its bundle", ztlog.ErrStorage, idx[k])
		}
	}
	return out, nil
}
