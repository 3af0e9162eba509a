package broker_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
)

// A broker reporting through a Courier returns as soon as the signed
// result is kept in the outbox (Report.Queued), before the log has it. With
// the log unreachable the result stays kept; a courier started later over
// the same outbox (a restarted process) delivers it as the decision's
// result entry, and empties the outbox.
func TestCourierKeepsThenDelivers(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	ob, err := broker.OpenOutbox(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	svid := f.s.SVID(contracttest.BrokerID)
	down := &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: deadURL(t), Attempts: 1}
	ctx, cancel := context.WithCancel(context.Background())
	c := ob.StartCourier(ctx, down, time.Hour, 2)
	b := f.broker(contracttest.BrokerID, func(cfg *broker.Config) { cfg.Reporter = c })

	w, ar := f.work("demo.echo", capability.Strict(t.TempDir(), "echo"), "echo", "hi")
	size := f.s.Size()
	rep, err := b.Handle(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Queued {
		t.Fatal("report not queued")
	}
	if rep.ReportError != nil {
		t.Fatalf("a queued result reports error %v", rep.ReportError)
	}
	if rep.Result != nil {
		t.Fatalf("a queued result has a committed entry %+v", rep.Result)
	}
	// Durable when Handle returned: in the courier's journal, which was
	// synced before Report returned.
	if !journalHolds(t, dir, broker.ResultBody(rep.Statement)) {
		t.Fatal("the courier journal does not hold the result when Handle returned")
	}
	// Then visible to the outbox's readers as a file.
	deadline := time.Now().Add(10 * time.Second)
	for p, _ := ob.Pending(); len(p) != 1; p, _ = ob.Pending() {
		if time.Now().After(deadline) {
			t.Fatalf("outbox holds %d result files 10s after Handle returned, want 1", len(p))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	cancel()
	if p, _ := ob.Pending(); len(p) != 1 {
		t.Fatalf("outbox holds %d results after a failed delivery, want 1", len(p))
	}
	if f.s.Size() != size {
		t.Fatalf("log size %d, want %d: nothing was delivered", f.s.Size(), size)
	}

	// The log is back; a new courier delivers what the first one left.
	up := &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: f.s.URL}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	c2 := ob.StartCourier(ctx2, up, time.Hour, 2)
	defer c2.Close()
	deadline = time.Now().Add(10 * time.Second)
	for f.s.Size() < size+1 {
		if time.Now().After(deadline) {
			t.Fatal("the kept result was not delivered within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e, err := entry.Parse(f.s.Entry(size))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := e.(*entry.Result)
	if !ok {
		t.Fatalf("entry %d is a %T, want a result", size, e)
	}
	if r.DecisionIndex != ar.Log.Index {
		t.Fatalf("result links to decision %d, want %d", r.DecisionIndex, ar.Log.Index)
	}
	waitEmpty(t, ob)
}

// With the log reachable, a queued result is committed right away, with no
// retry interval in between.
func TestCourierDeliversAtOnce(t *testing.T) {
	f := newFixture(t)
	ob, err := broker.OpenOutbox(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svid := f.s.SVID(contracttest.BrokerID)
	up := &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: f.s.URL}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := ob.StartCourier(ctx, up, time.Hour, 2)
	defer c.Close()
	b := f.broker(contracttest.BrokerID, func(cfg *broker.Config) { cfg.Reporter = c })
	w, ar := f.work("demo.echo", capability.Strict(t.TempDir(), "echo"), "echo", "hi")
	size := f.s.Size()
	rep, err := b.Handle(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Queued {
		t.Fatal("report not queued")
	}
	waitEmpty(t, ob)
	e, err := entry.Parse(f.s.Entry(size))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := e.(*entry.Result); !ok || r.DecisionIndex != ar.Log.Index {
		t.Fatalf("entry %d is %+v, want the result of decision %d", size, e, ar.Log.Index)
	}
}

// waitEmpty waits (at most 10s) until the outbox holds no result.
func waitEmpty(t *testing.T, ob *broker.Outbox) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := ob.Pending()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %v after 10s", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// journalHolds says whether a courier journal in dir holds body.
func journalHolds(t *testing.T, dir string, body []byte) bool {
	t.Helper()
	js, err := filepath.Glob(filepath.Join(dir, "courier-*.journal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		raw, err := os.ReadFile(j)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, body) {
			return true
		}
	}
	return false
}
