package results_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/results"
)

// When the append of a result entry is abandoned (CommitTimeout, or the
// broker's connection dropping: the append runs under r.Context()), the
// handler answers 503 "post the same statement again", and the abandoned
// entry may still be sequenced. The retry must then get the entry already
// committed, never append a second result for the decision.
func TestAbandonedResultCommitIsNotCommittedTwice(t *testing.T) {
	f := newFixture(t)
	d := f.decide("demo.echo")
	if d.Decision != "allow" {
		t.Fatalf("decision %+v", d)
	}
	auth, err := identity.NewAuthenticator(f.s.Src, []string{contracttest.ServerID.String()})
	if err != nil {
		t.Fatal(err)
	}
	// The production handler, with a commit timeout that fires before the
	// log's committer answers (a slow storage write does the same with the
	// default 2s).
	svc, err := results.New(results.Config{Log: f.s.Svc.Log(), Auth: auth, Bundles: f.s.Src, CommitTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	router := mux.NewRouter()
	svc.Register(router)
	body := string(broker.ResultBody(f.sign(f.broker, d.ActionDigest, f.result(d))))
	post := func() (int, string) {
		req := httptest.NewRequest("POST", "/v1/results", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.TLS = &tls.ConnectionState{PeerCertificates: f.broker.Certificates}
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	var last int
	for i := 0; i < 3; i++ {
		status, b := post()
		t.Logf("attempt %d: %d %s", i+1, status, b)
		if last = status; status == http.StatusServiceUnavailable {
			time.Sleep(300 * time.Millisecond) // the broker backs off, then retries as told
		}
	}
	if last != http.StatusOK {
		t.Errorf("the third attempt, after the abandoned entry was sequenced, got %d; want 200 with the entry committed", last)
	}
	// Count the result entries for the decision.
	time.Sleep(300 * time.Millisecond)
	size := f.s.Size()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.s.Svc.Log().Await(ctx, size-1); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := uint64(0); i < size; i++ {
		leaf, _, err := f.s.Svc.Log().Entry(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := entry.Parse(leaf); err == nil {
			if r, ok := e.(*entry.Result); ok && r.DecisionIndex == d.Log.Index {
				n++
			}
		}
	}
	if n != 1 {
		t.Fatalf("decision %d has %d result entries in the log; a decision gets one result", d.Log.Index, n)
	}
}
