package explorer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/zt-infra/ztlog/internal/httperr"
)

// The finder's limits.
const (
	// DefaultHits is how many hits a search returns when it names no limit.
	DefaultHits = 200
	// MaxHits is the most hits one search returns (the newest).
	MaxHits = 1000
	// growthSamples is how many entry bundles GET /ui/api/growth reads.
	growthSamples = 48
	// smallLog is the largest log whose growth is drawn from every entry.
	smallLog = 2 * layout.EntryBundleWidth
)

// finder answers searches by reading every entry bundle of the log's latest
// checkpoint. Its answers are hints: the page verifies each hit. At most
// maxScans run at once (a public endpoint must not let anyone make the
// server read its whole log many times over); more are refused with 503.
type finder struct {
	log   Reader
	scans chan struct{}
}

// maxScans is how many searches (or growth samples) may read the log at once.
const maxScans = 2

// acquire takes a scan slot, or answers 503 and returns false.
func (f *finder) acquire(w http.ResponseWriter) bool {
	if f.log == nil {
		writeError(w, http.StatusNotFound, "no_finder", "", "this server has no log to search")
		return false
	}
	select {
	case f.scans <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "finder_busy", "", fmt.Sprintf("%d searches are reading the log; try again in a moment", maxScans))
		return false
	}
}

func (f *finder) release() { <-f.scans }

// Query is a search: every given field must match.
type Query struct {
	// Agent matches a decision's actor (SPIFFE ID), its actor alias or
	// claimed actor, an agent entry's id, and the results of the decisions
	// it matched.
	Agent string
	// Action matches a decision's action exactly.
	Action string
	// CorrelationID matches the correlation id of any entry.
	CorrelationID string
	// Kind matches the entry kind (decision, result, agent, policy).
	Kind string
	// From and To bound the entry's time (inclusive); zero: unbounded.
	From, To time.Time
	// DecisionIndex, when set, matches the result entries of that decision.
	DecisionIndex *uint64
	// PolicyHash matches a policy entry's hash and a decision's policy hash.
	PolicyHash string
}

// FindResult is the body of GET /ui/api/find.
type FindResult struct {
	// TreeSize is the size of the checkpoint the finder read.
	TreeSize uint64 `json:"tree_size"`
	// Indices are the matching entries, oldest first (the newest Limit).
	Indices []uint64 `json:"indices"`
	// Matched counts every match; more than len(Indices) when truncated.
	Matched int `json:"matched"`
	// Truncated says that older matches were left out.
	Truncated bool `json:"truncated"`
}

// summary is what the finder reads of an entry (contract/entry/entry.md);
// unknown fields are ignored: the page, not the finder, reads entries.
type summary struct {
	Kind          string  `json:"kind"`
	Time          string  `json:"time"`
	CorrelationID string  `json:"correlation_id"`
	Actor         string  `json:"actor"`
	ActorAlias    string  `json:"actor_alias"`
	ClaimedActor  string  `json:"claimed_actor"`
	Action        string  `json:"action"`
	ID            string  `json:"id"`
	DecisionIndex *uint64 `json:"decision_index"`
	Hash          string  `json:"hash"`
	Policy        struct {
		Hash string `json:"hash"`
	} `json:"policy"`
}

// matches reports whether s matches q; decisions are the indices of the
// decisions already matched by q.Agent (their results match too).
func (q *Query) matches(s *summary, decisions map[uint64]bool) bool {
	if q.Agent != "" {
		own := s.Actor == q.Agent || s.ActorAlias == q.Agent || s.ClaimedActor == q.Agent ||
			(s.Kind == "agent" && s.ID == q.Agent)
		linked := s.Kind == "result" && s.DecisionIndex != nil && decisions[*s.DecisionIndex]
		if !own && !linked {
			return false
		}
	}
	if q.Action != "" && s.Action != q.Action {
		return false
	}
	if q.CorrelationID != "" && s.CorrelationID != q.CorrelationID {
		return false
	}
	if q.Kind != "" && s.Kind != q.Kind {
		return false
	}
	if q.DecisionIndex != nil && (s.Kind != "result" || s.DecisionIndex == nil || *s.DecisionIndex != *q.DecisionIndex) {
		return false
	}
	if q.PolicyHash != "" && s.Hash != q.PolicyHash && s.Policy.Hash != q.PolicyHash {
		return false
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, s.Time)
		if err != nil || (!q.From.IsZero() && t.Before(q.From)) || (!q.To.IsZero() && t.After(q.To)) {
			return false
		}
	}
	return true
}

// Find scans the tree of the log's latest checkpoint for entries matching
// q and returns the newest limit of them.
func Find(ctx context.Context, log Reader, q Query, limit int) (*FindResult, error) {
	size, err := latestSize(ctx, log)
	if err != nil {
		return nil, err
	}
	res := &FindResult{TreeSize: size, Indices: []uint64{}}
	decisions := map[uint64]bool{}
	err = scan(ctx, log, size, func(i uint64, s *summary) {
		if !q.matches(s, decisions) {
			return
		}
		if s.Kind == "decision" {
			decisions[i] = true
		}
		res.Matched++
		res.Indices = append(res.Indices, i)
		if len(res.Indices) > limit {
			res.Indices = res.Indices[1:]
			res.Truncated = true
		}
	})
	return res, err
}

// scan calls fn with every entry of the tree of size size that is a JSON
// object; other entries are skipped (the page shows them as they are).
func scan(ctx context.Context, log Reader, size uint64, fn func(uint64, *summary)) error {
	return scanEntries(ctx, log, size, func(i uint64, e []byte) {
		var s summary
		if json.Unmarshal(e, &s) == nil {
			fn(i, &s)
		}
	})
}

// scanEntries calls fn with every entry of the tree of size size.
func scanEntries(ctx context.Context, log Reader, size uint64, fn func(uint64, []byte)) error {
	for b := uint64(0); b*layout.EntryBundleWidth < size; b++ {
		entries, err := readBundle(ctx, log, b, size)
		if err != nil {
			return err
		}
		for j, e := range entries {
			fn(b*layout.EntryBundleWidth+uint64(j), e)
		}
	}
	return nil
}

func readBundle(ctx context.Context, log Reader, index, size uint64) ([][]byte, error) {
	p := layout.PartialTileSize(0, index, size)
	raw, err := log.ReadEntryBundle(ctx, index, p)
	if err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", index, err)
	}
	var eb api.EntryBundle
	if err := eb.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", index, err)
	}
	want := int(p)
	if want == 0 {
		want = layout.EntryBundleWidth
	}
	if len(eb.Entries) < want {
		return nil, fmt.Errorf("entry bundle %d holds %d entries, want %d", index, len(eb.Entries), want)
	}
	return eb.Entries[:want], nil
}

// latestSize reads the tree size of the log's latest checkpoint (its second
// line; the page verifies the checkpoint, the finder only reads it).
func latestSize(ctx context.Context, log Reader) (uint64, error) {
	cp, err := log.ReadCheckpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	lines := bytes.SplitN(cp, []byte("\n"), 3)
	if len(lines) < 3 {
		return 0, errors.New("checkpoint: fewer than three lines")
	}
	n, err := strconv.ParseUint(string(lines[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: tree size %q: %w", lines[1], err)
	}
	return n, nil
}

// parseQuery reads a search from the URL's query.
func parseQuery(v url.Values) (Query, int, *apiErr) {
	q := Query{Agent: v.Get("agent"), Action: v.Get("action"), CorrelationID: v.Get("correlation_id"),
		Kind: v.Get("kind"), PolicyHash: v.Get("policy_hash")}
	switch q.Kind {
	case "", "decision", "result", "agent", "policy":
	default:
		return q, 0, &apiErr{"bad_kind", "kind", fmt.Sprintf("kind %q: want decision, result, agent or policy", q.Kind)}
	}
	for _, b := range []struct {
		field string
		t     *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(b.field); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, 0, &apiErr{"bad_" + b.field, b.field, fmt.Sprintf("%s %q is not an RFC 3339 time (2026-11-21T10:00:00Z)", b.field, s)}
			}
			*b.t = t
		}
	}
	if s := v.Get("decision_index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, 0, &apiErr{"bad_decision_index", "decision_index", fmt.Sprintf("decision_index %q is not a decimal index", s)}
		}
		q.DecisionIndex = &n
	}
	limit := DefaultHits
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHits {
			return q, 0, &apiErr{"bad_limit", "limit", fmt.Sprintf("limit %q: want 1 to %d", s, MaxHits)}
		}
		limit = n
	}
	return q, limit, nil
}

type apiErr struct{ code, field, msg string }

func (f *finder) find(w http.ResponseWriter, r *http.Request) {
	q, limit, bad := parseQuery(r.URL.Query())
	if bad != nil {
		writeError(w, http.StatusBadRequest, bad.code, bad.field, bad.msg)
		return
	}
	if !f.acquire(w) {
		return
	}
	defer f.release()
	res, err := Find(r.Context(), f.log, q, limit)
	if err != nil {
		writeError(w, http.StatusBadGateway, "log_unreadable", "", "the log could not be read: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, res)
}

// GrowthPoint is one sample of the log's size over time: the log held Size
// entries at Time (the time of entry Size-1).
type GrowthPoint struct {
	Size uint64 `json:"size"`
	Time string `json:"time"`
}

// Growth samples the log's size over time from the times of the last
// entries of up to growthSamples entry bundles, spread over the log (from
// every entry's time in a log of at most smallLog entries).
func Growth(ctx context.Context, log Reader) (uint64, []GrowthPoint, error) {
	size, err := latestSize(ctx, log)
	if err != nil || size == 0 {
		return size, []GrowthPoint{}, err
	}
	bundles := (size + layout.EntryBundleWidth - 1) / layout.EntryBundleWidth
	points := []GrowthPoint{}
	if size <= smallLog {
		err := scanEntries(ctx, log, size, func(i uint64, e []byte) { points = append(points, point(e, i+1)...) })
		return size, points, err
	}
	last := uint64(1<<64 - 1)
	for k := uint64(0); k < growthSamples; k++ {
		b := k * (bundles - 1) / (growthSamples - 1)
		if b == last {
			continue
		}
		last = b
		entries, err := readBundle(ctx, log, b, size)
		if err != nil {
			return size, points, err
		}
		if b == 0 {
			points = append(points, point(entries[0], 1)...)
		}
		points = append(points, point(entries[len(entries)-1], b*layout.EntryBundleWidth+uint64(len(entries)))...)
	}
	return size, points, nil
}

func point(e []byte, size uint64) []GrowthPoint {
	var s summary
	if json.Unmarshal(e, &s) != nil || s.Time == "" {
		return nil
	}
	return []GrowthPoint{{Size: size, Time: s.Time}}
}

func (f *finder) growth(w http.ResponseWriter, r *http.Request) {
	if !f.acquire(w) {
		return
	}
	defer f.release()
	size, points, err := Growth(r.Context(), f.log)
	if err != nil {
		writeError(w, http.StatusBadGateway, "log_unreadable", "", "the log could not be read: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, struct {
		TreeSize uint64        `json:"tree_size"`
		Points   []GrowthPoint `json:"points"`
	}{size, points})
}
