package broker_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/contract"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/contracttest"
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
	e, err := contract.Parse(f.s.Entry(size))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := e.(*contract.Result)
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
