package broker_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
)

// deadURL is an https URL nobody listens at.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "https://" + addr
}

// The log is unreachable when the work finishes: the signed result stays in
// the outbox, and a later flush commits it as the decision's result entry.
// A result the log refuses for good is set aside, not retried forever.
func TestOutboxKeepsResultsUntilCommitted(t *testing.T) {
	f := newFixture(t)
	ob, err := broker.OpenOutbox(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svid := f.s.SVID(contracttest.BrokerID)
	down := &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: deadURL(t), Attempts: 2}
	up := &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: f.s.URL}
	b := f.broker(contracttest.BrokerID, func(c *broker.Config) { c.Reporter = ob.Reporter(down) })

	w, ar := f.work("demo.echo", capability.Strict(t.TempDir(), "echo"), "echo", "hi")
	rep, err := b.Handle(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ReportError == nil || rep.Result != nil || !strings.Contains(rep.ReportError.Error(), "kept in") {
		t.Fatalf("report with the log unreachable: result %v, error %v", rep.Result, rep.ReportError)
	}
	pending, _ := ob.Pending()
	if len(pending) != 1 {
		t.Fatalf("outbox holds %d results, want 1", len(pending))
	}
	size := f.s.Size()
	body, err := os.ReadFile(pending[0])
	if err != nil {
		t.Fatal(err)
	}

	// Still unreachable: the flush fails and keeps it.
	if n, err := ob.Flush(context.Background(), down); err == nil || n != 0 {
		t.Fatalf("flush to an unreachable log: %d, %v", n, err)
	}
	if p, _ := ob.Pending(); len(p) != 1 {
		t.Fatal("a failed flush lost the result")
	}

	// The log is back.
	if n, err := ob.Flush(context.Background(), up); err != nil || n != 1 {
		t.Fatalf("flush: %d, %v", n, err)
	}
	if p, _ := ob.Pending(); len(p) != 0 {
		t.Fatalf("committed results still pending: %v", p)
	}
	if f.s.Size() != size+1 {
		t.Fatalf("log size %d after the flush, want %d", f.s.Size(), size+1)
	}
	e, err := entry.Parse(f.s.Entry(size))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := e.(*entry.Result)
	if !ok || r.DecisionIndex != ar.Log.Index || r.Outcome != "ok" {
		t.Fatalf("entry %d is %+v, want the result of decision %d", size, e, ar.Log.Index)
	}

	// A result the log refuses (its statement altered after signing): set
	// aside as .rejected; the flush goes on and reports no error.
	bad := tamperSignature(t, body)
	os.WriteFile(pending[0], bad, 0o600)
	if n, err := ob.Flush(context.Background(), up); err != nil || n != 0 {
		t.Fatalf("flush of a refused result: %d, %v", n, err)
	}
	if _, err := os.Stat(pending[0] + ".rejected"); err != nil {
		t.Fatalf("refused result not set aside: %v", err)
	}
	if p, _ := ob.Pending(); len(p) != 0 || f.s.Size() != size+1 {
		t.Fatalf("after a refused result: pending %v, log size %d", p, f.s.Size())
	}
}

// tamperSignature changes the signature of the DSSE envelope in a result body.
func tamperSignature(t *testing.T, body []byte) []byte {
	t.Helper()
	var b struct {
		Statement struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
			Signatures  []struct {
				KeyID string `json:"keyid"`
				Sig   string `json:"sig"`
			} `json:"signatures"`
		} `json:"statement"`
		Chain []string `json:"chain"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Statement.Signatures) != 1 {
		t.Fatalf("kept body is not a result body: %v %s", err, body)
	}
	sig := []byte(b.Statement.Signatures[0].Sig)
	sig[10] ^= 'A' ^ 'B'
	if sig[10] == b.Statement.Signatures[0].Sig[10] {
		t.Fatal("signature unchanged")
	}
	b.Statement.Signatures[0].Sig = string(sig)
	out, _ := json.Marshal(b)
	return out
}

// Which answers set a result aside: only a 4xx other than 401, 408 and 429
// is the log refusing it for good. A 5xx (the log's storage_error, a
// proxy's 502 or 504), 408, 429 or 401 (the broker's identity refused, e.g.
// an expired SVID) may succeed later, so the result stays pending for the
// next flush; losing it would lose the evidence of work that ran.
func TestOutboxSetsAsideOnlyRefusals(t *testing.T) {
	for _, c := range []struct {
		status int
		kept   bool
	}{
		{http.StatusInternalServerError, true}, {http.StatusBadGateway, true}, {http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true}, {http.StatusRequestTimeout, true}, {http.StatusTooManyRequests, true},
		{http.StatusUnauthorized, true},
		{http.StatusBadRequest, false}, {http.StatusForbidden, false}, {http.StatusConflict, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			w.Write([]byte(`{"code":"storage_error","message":"the answer under test"}`))
		}))
		dir := t.TempDir()
		ob, err := broker.OpenOutbox(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "result-"+strings.Repeat("0", 64)+".json")
		if err := os.WriteFile(path, []byte(`{"statement":{},"chain":[]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		ob.Flush(context.Background(), &broker.HTTPReporter{Client: srv.Client(), BaseURL: srv.URL, Attempts: 1})
		srv.Close()
		pending, _ := ob.Pending()
		_, rerr := os.Stat(path + ".rejected")
		switch {
		case c.kept && (len(pending) != 1 || rerr == nil):
			t.Errorf("HTTP %d: %d pending, set aside %v; want the result kept for the next flush", c.status, len(pending), rerr == nil)
		case !c.kept && (len(pending) != 0 || rerr != nil):
			t.Errorf("HTTP %d: %d pending, set aside %v; want it set aside as .rejected", c.status, len(pending), rerr == nil)
		}
	}
}
