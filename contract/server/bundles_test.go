package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/httpread"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
	"github.com/zt-infra/ztlog/verifier/bundle"
)

// GET /v1/bundles/{index}: the bundle the server serves verifies offline
// with only the log's key.
func TestBundleEndpoint(t *testing.T) {
	l, vkey, entries := scenarioLog(t, "test.example/ztlog-server", 16)
	r := mux.NewRouter()
	httpread.Register(r, l)
	r.HandleFunc("/v1/bundles/{index}", (&bundles{l: l}).serve)
	srv := httptest.NewServer(r)
	defer srv.Close()
	pol, _ := trustpolicy.Parse([]byte("log " + vkey + "\nquorum none\n"))

	// Find an allow, its result, and a deny.
	allow, result, deny := -1, -1, -1
	for i, raw := range entries {
		e, _ := entry.Parse(raw)
		switch e := e.(type) {
		case *entry.Decision:
			if e.Effect == entry.Allow && allow < 0 {
				allow = i
			}
			if e.Effect == entry.Deny && deny < 0 {
				deny = i
			}
		case *entry.Result:
			if allow >= 0 && e.DecisionIndex == uint64(allow) {
				result = i
			}
		}
	}
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	for _, path := range []string{fmt.Sprintf("/v1/bundles/%d", deny), fmt.Sprintf("/v1/bundles/%d?result=%d", allow, result)} {
		code, body := get(path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		bd, err := bundle.Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rep := bundle.Verify(bd, pol, bundle.Options{Now: time.Now()})
		if !rep.Valid {
			t.Fatalf("%s: %+v", path, rep.FirstFailure)
		}
		if (bd.Result != nil) != (path != fmt.Sprintf("/v1/bundles/%d", deny)) {
			t.Fatalf("%s: result %v", path, bd.Result)
		}
	}
	for path, want := range map[string]string{
		"/v1/bundles/0": "not_a_decision",
		fmt.Sprintf("/v1/bundles/%d?result=%d", allow, deny):  "not_a_result",
		fmt.Sprintf("/v1/bundles/%d?result=%d", deny, result): "bad_result",
		"/v1/bundles/999": "not_found",
		"/v1/bundles/01":  "bad_index",
	} {
		code, body := get(path)
		var e httperr.Error
		json.Unmarshal(body, &e)
		if code/100 != 4 || e.Code != want {
			t.Errorf("%s: %d %s, want %s", path, code, body, want)
		}
	}
}

// scenarioLog opens a POSIX log signed by a new key for origin, appends the
// default audit scenario's first n entries and waits until they are
// integrated. It returns the log (closed at the end of the test), the
// verifier key and the entries in log order.
func scenarioLog(t *testing.T, origin string, n uint64) (*ztlog.Log, string, [][]byte) {
	t.Helper()
	ctx := context.Background()
	skey, vkey, err := ztlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ztlog.ParseKey(skey)
	b, err := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: key, CheckpointInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(ctx) })
	entries := audittest.Slice(audittest.DefaultScenario().Entries(n))
	var last uint64
	for _, e := range entries {
		if last, err = l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Await(ctx, last); err != nil {
		t.Fatal(err)
	}
	return l, vkey, entries
}
