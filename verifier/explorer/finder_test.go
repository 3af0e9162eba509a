package explorer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
)

// memLog is a log of entries in memory, its checkpoint naming only the size
// (the finder reads nothing else of it).
type memLog struct{ entries [][]byte }

func (m *memLog) ReadCheckpoint(context.Context) ([]byte, error) {
	return []byte(fmt.Sprintf("test/log\n%d\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— test/log x\n", len(m.entries))), nil
}

func (m *memLog) ReadEntryBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	lo := index * layout.EntryBundleWidth
	hi := lo + layout.EntryBundleWidth
	if p > 0 {
		hi = lo + uint64(p)
	}
	var b bytes.Buffer
	for _, e := range m.entries[lo:hi] {
		b.Write([]byte{byte(len(e) >> 8), byte(len(e))})
		b.Write(e)
	}
	return b.Bytes(), nil
}

func testLog(t *testing.T) *memLog {
	t.Helper()
	m := &memLog{}
	add := func(v map[string]any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		m.entries = append(m.entries, b)
	}
	add(map[string]any{"kind": "policy", "time": "2026-11-21T09:00:00Z", "hash": "sha256:aa"})
	add(map[string]any{"kind": "agent", "time": "2026-11-21T09:00:01Z", "id": "spiffe://t/agent/a", "correlation_id": "c0"})
	// 300 entries so that the search crosses an entry bundle.
	for i := 0; i < 300; i++ {
		actor := "spiffe://t/agent/b"
		if i%100 == 0 {
			actor = "spiffe://t/agent/a"
		}
		add(map[string]any{"kind": "decision", "time": time.Date(2026, 11, 21, 10, 0, i, 0, time.UTC).Format(time.RFC3339), "actor": actor,
			"action": fmt.Sprintf("act.%d", i%3), "correlation_id": fmt.Sprintf("c%d", i), "policy": map[string]any{"hash": "sha256:aa"}})
	}
	add(map[string]any{"kind": "result", "time": "2026-11-21T11:00:00Z", "decision_index": 102, "correlation_id": "c100"})
	m.entries = append(m.entries, []byte("not json"))
	return m
}

func TestFind(t *testing.T) {
	l := testLog(t)
	di := uint64(102)
	for _, c := range []struct {
		name  string
		q     Query
		limit int
		want  []uint64
	}{
		{"agent: its registration, decisions and their result", Query{Agent: "spiffe://t/agent/a"}, 10, []uint64{1, 2, 102, 202, 302}},
		{"action", Query{Action: "act.2", From: time.Date(2026, 11, 21, 10, 4, 0, 0, time.UTC)}, 10, []uint64{274, 277, 280, 283, 286, 289, 292, 295, 298, 301}}, // the newest 10
		{"correlation id", Query{CorrelationID: "c100"}, 10, []uint64{102, 302}},
		{"kind", Query{Kind: "policy"}, 10, []uint64{0}},
		{"result of a decision", Query{DecisionIndex: &di}, 10, []uint64{302}},
		{"time range", Query{From: time.Date(2026, 11, 21, 10, 0, 5, 0, time.UTC), To: time.Date(2026, 11, 21, 10, 0, 7, 0, time.UTC)}, 10, []uint64{7, 8, 9}},
		{"policy hash", Query{PolicyHash: "sha256:aa", Kind: "policy"}, 10, []uint64{0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Find(context.Background(), l, c.q, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if res.TreeSize != uint64(len(l.entries)) {
				t.Errorf("tree size %d, want %d", res.TreeSize, len(l.entries))
			}
			if fmt.Sprint(res.Indices) != fmt.Sprint(c.want) {
				t.Errorf("indices %v, want %v", res.Indices, c.want)
			}
		})
	}
}

func TestFindKeepsTheNewest(t *testing.T) {
	res, err := Find(context.Background(), testLog(t), Query{Agent: "spiffe://t/agent/b"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Indices) != "[299 300 301]" {
		t.Errorf("indices %v, want the newest three", res.Indices)
	}
	if !res.Truncated {
		t.Error("not marked truncated")
	}
	if res.Matched != 297 {
		t.Errorf("matched %d, want 297", res.Matched)
	}
}

func TestGrowth(t *testing.T) {
	size, points, err := Growth(context.Background(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if size != 304 {
		t.Errorf("size %d, want 304", size)
	}
	// A small log: one point per entry, but the last ("not json").
	if len(points) != 303 {
		t.Fatalf("%d points, want 303", len(points))
	}
	if points[0].Size != 1 || points[0].Time != "2026-11-21T09:00:00Z" {
		t.Errorf("first point %+v", points[0])
	}
	if last := points[302]; last.Size != 303 || last.Time != "2026-11-21T11:00:00Z" {
		t.Errorf("last point %+v, want size 303 at the result's time", last)
	}
}

func TestGrowthSamplesALargeLog(t *testing.T) {
	l := &memLog{}
	for i := 0; i < 100*layout.EntryBundleWidth; i++ {
		l.entries = append(l.entries, []byte(fmt.Sprintf(`{"time":"2026-11-21T10:00:00.%06dZ"}`, i)))
	}
	_, points, err := Growth(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 0, then the last entry of 48 bundles spread from the first to the last.
	if len(points) != 1+growthSamples {
		t.Fatalf("%d points, want %d", len(points), 1+growthSamples)
	}
	if got := points[len(points)-1].Size; got != uint64(len(l.entries)) {
		t.Errorf("last point at size %d, want %d", got, len(l.entries))
	}
}

func TestFindQueryErrors(t *testing.T) {
	h := Handler(Config{Log: testLog(t)})
	for _, c := range []struct{ query, code, field string }{
		{"kind=nope", "bad_kind", "kind"},
		{"from=yesterday", "bad_from", "from"},
		{"to=2026-11-21", "bad_to", "to"},
		{"decision_index=-1", "bad_decision_index", "decision_index"},
		{"limit=0", "bad_limit", "limit"},
		{"limit=1001", "bad_limit", "limit"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/api/find?"+c.query, nil))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", c.query, rec.Code)
			continue
		}
		var e struct{ Code, Field, Message string }
		json.Unmarshal(rec.Body.Bytes(), &e)
		if e.Code != c.code {
			t.Errorf("%s: code %q, want %q", c.query, e.Code, c.code)
		}
		if e.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.query, e.Field, c.field)
		}
	}
}

func TestHandlerServesThePage(t *testing.T) {
	h := Handler(Config{Log: testLog(t), TrustPolicy: []byte("quorum none\n"), TrustSource: "p.policy", Mode: "explore"})
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/verify.js", "/ui/history.js", "/ui/style.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: HTTP %d", path, rec.Code)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/config.json", nil))
	var cfg PageConfig
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.TrustPolicy != "quorum none\n" {
		t.Errorf("trust policy %q", cfg.TrustPolicy)
	}
	if cfg.Mode != "explore" {
		t.Errorf("mode %q", cfg.Mode)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ui/api/find", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d, want 405", rec.Code)
	}
}

// TestDirLogCutsCompletedPartials: a partial tile or bundle the log has
// since completed is answered from the full one.
func TestDirLogCutsCompletedPartials(t *testing.T) {
	root := t.TempDir()
	l := testLog(t)
	full, _ := l.ReadEntryBundle(context.Background(), 0, 0)
	write := func(path string, b []byte) {
		p := filepath.Join(root, filepath.FromSlash(path))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(layout.EntriesPath(0, 0), full)
	hashes := bytes.Repeat([]byte{7}, 256*32)
	write(layout.TilePath(0, 0, 0), hashes)
	write(layout.CheckpointPath, []byte("test/log\n256\n"))
	d := dirLog{root: root}
	got, err := d.ReadEntryBundle(context.Background(), 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := l.ReadEntryBundle(context.Background(), 0, 3)
	if !bytes.Equal(got, want) {
		t.Errorf("partial bundle of 3 = %d bytes, want the first 3 entries (%d bytes)", len(got), len(want))
	}
	srv := httptest.NewServer(d.handler())
	defer srv.Close()
	for path, wantLen := range map[string]int{"/log/tile/0/000.p/5": 5 * 32, "/log/tile/0/000": 256 * 32} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if b.Len() != wantLen {
			t.Errorf("%s: %d bytes, want %d", path, b.Len(), wantLen)
		}
	}
	for _, path := range []string{"/log/tile/0/../../etc/passwd", "/log/tile/0/0", "/log/tile/entries/x1"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: HTTP %d, want 400 or 404", path, resp.StatusCode)
		}
	}
}

func TestOfflineRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := Offline(ctx, OfflineConfig{Log: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no trust policy") {
		t.Errorf("no policy: %v", err)
	}
	if _, err := Offline(ctx, OfflineConfig{Log: t.TempDir(), TrustPolicy: []byte("quorum none\n")}); err == nil || !strings.Contains(err.Error(), "holds no checkpoint") {
		t.Errorf("empty directory: %v", err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := Offline(ctx, OfflineConfig{Log: srv.URL, TrustPolicy: []byte("quorum none\n")}); err == nil || !strings.Contains(err.Error(), "no checkpoint at") {
		t.Errorf("URL without a log: %v", err)
	}
}

func FuzzFindQuery(f *testing.F) {
	for _, s := range []string{"agent=spiffe://t/a&kind=decision", "from=2026-11-21T10:00:00Z&to=x", "decision_index=18446744073709551615&limit=1000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, limit, bad := parseQuery(v)
		if bad != nil {
			if bad.code == "" || bad.field == "" || bad.msg == "" {
				t.Errorf("error without code, field or message: %+v", bad)
			}
			return
		}
		if limit < 1 || limit > MaxHits {
			t.Errorf("limit %d accepted", limit)
		}
		switch q.Kind {
		case "", "decision", "result", "agent", "policy":
		default:
			t.Errorf("kind %q accepted", q.Kind)
		}
	})
}

// blockingLog holds every read until release is closed.
type blockingLog struct {
	memLog
	started chan struct{}
	release chan struct{}
}

func (b *blockingLog) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	b.started <- struct{}{}
	<-b.release
	return b.memLog.ReadCheckpoint(ctx)
}

// TestFinderRefusesTooManyScans: a public server does not read its whole
// log for more than maxScans searches at once.
func TestFinderRefusesTooManyScans(t *testing.T) {
	l := &blockingLog{memLog: *testLog(t), started: make(chan struct{}, maxScans), release: make(chan struct{})}
	h := Handler(Config{Log: l})
	done := make(chan int, maxScans)
	for i := 0; i < maxScans; i++ {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/api/find?kind=policy", nil))
			done <- rec.Code
		}()
		<-l.started
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/api/growth", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a search beyond %d at once: HTTP %d, want 503", maxScans, rec.Code)
	}
	if !strings.Contains(rec.Body.String(), "finder_busy") {
		t.Errorf("body %s, want finder_busy", rec.Body.String())
	}
	close(l.release)
	for i := 0; i < maxScans; i++ {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a search within the limit: HTTP %d", code)
		}
	}
}
