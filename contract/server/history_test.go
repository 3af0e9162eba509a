package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
	"github.com/zt-infra/ztlog/verifier/history"
)

// GET /v1/history over a real POSIX log of 700 entries (three entry
// bundles): every agent's and a correlation id's answer verifies with only
// the log's key and holds exactly the entries a brute-force pass over the
// log assigns to the key; an answer for another size is refused naming
// the indexed one.
func TestHistoryEndpoint(t *testing.T) {
	ctx := context.Background()
	l, vkey, entries := scenarioLog(t, "test.example/ztlog-history", 700)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Service{log: l, router: mux.NewRouter(), registry: prometheus.NewRegistry(), logger: quiet}
	h := newHistoryIndex(s, time.Hour)
	if err := h.step(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.router)
	defer srv.Close()
	pol, _ := trustpolicy.Parse([]byte("log " + vkey + "\nquorum none\n"))

	// What the index must hold, computed the slow way.
	want := map[string][]uint64{}
	actor := map[uint64]string{}
	for i, raw := range entries {
		e, err := entry.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := e.(*entry.Decision); ok {
			actor[uint64(i)] = d.Actor
		}
		for _, k := range history.Keys(e, uint64(i), func(j uint64) string { return actor[j] }) {
			want[k] = append(want[k], uint64(i))
		}
	}
	base, _ := url.Parse(srv.URL)
	queries := []history.Query{{CorrelationID: "c-5"}}
	for n := range 8 {
		queries = append(queries, history.Query{Agent: audittest.Agent(n)})
	}
	for _, q := range queries {
		raw, err := history.Fetch(ctx, http.DefaultClient, base, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := history.Verify(raw, q.Key(), pol, time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", q.Key(), err)
		}
		w := want[q.Key()]
		if len(w) == 0 {
			t.Fatalf("%s: the scenario gives it no entries", q.Key())
		}
		if len(got.Entries) != len(w) {
			t.Fatalf("%s: %d entries, want %d", q.Key(), len(got.Entries), len(w))
		}
		for k := range w {
			if got.Entries[k].Index != w[k] {
				t.Errorf("%s: entry %d is index %d, want %d", q.Key(), k, got.Entries[k].Index, w[k])
			}
		}
	}

	resp, err := http.Get(srv.URL + "/v1/history?agent=" + url.QueryEscape(audittest.Agent(0)) + "&size=3")
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Code, Field, Message string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("size=3: status %d, want 409", resp.StatusCode)
	}
	if wantMsg := "ask for size=700"; !strings.Contains(e.Message, wantMsg) {
		t.Errorf("size=3: message %q does not say %q", e.Message, wantMsg)
	}
}
