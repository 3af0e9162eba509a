package witnessing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	// Tessera logs through klog; keep test output to the tests.
	klog.SetSlogLogger(quiet)
	os.Exit(m.Run())
}

// realWitness runs a zt-witness service in-process on a loopback port.
type realWitness struct {
	name string
	c    *cosigner.Cosigner
	url  string
	srv  *http.Server
	ln   net.Listener
}

func startWitness(t *testing.T, name string, logs string) *realWitness {
	t.Helper()
	skey, _, err := cosigner.Generate("witness.example/"+name, cosigner.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cosigner.Parse(skey)
	cfg, err := config.Parse(name, []byte(logs))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := server.New(server.Options{Cosigners: []*cosigner.Cosigner{c}, Store: st, Config: func() *config.Config { return cfg }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rw := &realWitness{name: name, c: c, url: "http://" + ln.Addr().String() + "/", srv: &http.Server{Handler: w.Handler()}, ln: ln}
	go rw.srv.Serve(ln)
	t.Cleanup(func() { rw.srv.Close() })
	return rw
}

func TestTwoOfThreeWithOneRefusingAndOneDown(t *testing.T) {
	skey, vkey, _ := ztlog.GenerateKey("quorum.example/log")
	key, _ := ztlog.ParseKey(skey)
	logs := fmt.Sprintf(`{"logs":[{"origin":"quorum.example/log","verifier_key":%q}]}`, vkey)
	w1 := startWitness(t, "w1", logs)
	w2 := startWitness(t, "w2", logs)
	w3 := startWitness(t, "w3", `{"logs":[]}`) // does not know the log: 404
	text := fmt.Sprintf("log %s\nwitness w1 %s %s\nwitness w2 %s %s\nwitness w3 %s %s\ngroup all3 2 w1 w2 w3\nquorum all3\n",
		vkey, w1.c.VerifierKey, w1.url, w2.c.VerifierKey, w2.url, w3.c.VerifierKey, w3.url)
	p, err := trustpolicy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(p, Options{Origin: "quorum.example/log", Timeout: 2 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("before any publication: %v", err)
	}
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, c.HTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond,
		Witnesses: c.Group(), WitnessOptions: c.WitnessOptions(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		l.Close(cctx)
	}()
	idx, err := l.Append(ctx, []byte("entry 0"))
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cp, err := l.Await(actx, idx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []*realWitness{w1, w2} {
		if _, err := note.Open(cp.Note, note.VerifierList(w.c.Verifier)); err != nil {
			t.Fatalf("published checkpoint lacks %s's cosignature: %v", w.name, err)
		}
	}
	// Quorum met; w3 is reported as refusing with the reason.
	if err := c.Check(ctx); err != nil {
		t.Fatalf("2 of 3 cosign: %v", err)
	}
	waitFor(t, func() bool { return c.Status()[2].LastAttempt != "" })
	st := c.Status()
	if !st[0].OK || !st[1].OK || st[2].OK || !strings.Contains(st[2].Outcome, "HTTP 404") || !strings.Contains(st[2].Outcome, "does not know this log") {
		t.Fatalf("status %+v", st)
	}
	r := c.Report(ctx).(Report)
	if !r.Met || r.Quorum != "all3" || len(r.Witness) != 3 {
		t.Fatalf("report %+v", r)
	}

	// w2 goes down: only w1 cosigns; no new checkpoint, and Check says why.
	w2.srv.Close()
	if _, err := l.Append(ctx, []byte("entry 1")); err != nil {
		t.Fatal(err)
	}
	actx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = l.Await(actx, idx+1)
	cancel()
	if err == nil {
		t.Fatal("a checkpoint was published without the quorum")
	}
	waitFor(t, func() bool { return c.Check(ctx) != nil })
	msg := c.Check(ctx).Error()
	for _, want := range []string{"no new checkpoint can be published", `group "all3" has 1 of the 2 it needs (w1)`, "w2: unreachable", "w3: refused: HTTP 404"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Check message lacks %q:\n%s", want, msg)
		}
	}
	if cur, _ := l.Checkpoint(); cur.Size != cp.Size {
		t.Fatalf("published size moved to %d without quorum", cur.Size)
	}
}

func TestFailOpenPublishesAndSaysSo(t *testing.T) {
	skey, vkey, _ := ztlog.GenerateKey("open.example/log")
	key, _ := ztlog.ParseKey(skey)
	w1 := startWitness(t, "w1", `{"logs":[]}`) // refuses everything
	p, _ := trustpolicy.Parse([]byte(fmt.Sprintf("witness w1 %s %s\nquorum w1\n", w1.c.VerifierKey, w1.url)))
	var logs strings.Builder
	sw := &syncWriter{w: &logs}
	logger := slog.New(slog.NewTextHandler(sw, nil))
	c, err := New(p, Options{Origin: "open.example/log", FailOpen: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	sw.mu.Lock()
	announced := strings.Contains(logs.String(), "WITNESS FAIL-OPEN")
	sw.mu.Unlock()
	if !announced {
		t.Fatal("fail-open not announced")
	}
	ctx := context.Background()
	b, _ := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, c.HTTPClient())
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond,
		Witnesses: c.Group(), WitnessOptions: c.WitnessOptions(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	idx, _ := l.Append(ctx, []byte("x"))
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := l.Await(actx, idx); err != nil {
		t.Fatalf("fail-open did not publish: %v", err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatalf("fail-open Check failed: %v", err)
	}
	if r := c.Report(ctx).(Report); r.Met || !r.FailOpen {
		t.Fatalf("report %+v", r)
	}
	_ = vkey
}

func TestNewRefuses(t *testing.T) {
	_, vkey, _ := ztlog.GenerateKey("a.example/log")
	_, other, _ := ztlog.GenerateKey("b.example/log")
	skey, _, _ := cosigner.Generate("w", cosigner.Ed25519)
	c, _ := cosigner.Parse(skey)
	for name, tc := range map[string]struct{ text, want string }{
		"no url":       {fmt.Sprintf("witness w1 %s\nquorum w1\n", c.VerifierKey), "has no URL"},
		"not this log": {fmt.Sprintf("log %s\nwitness w1 %s http://x/\nquorum w1\n", other, c.VerifierKey), "not this one"},
		"ftp url":      {fmt.Sprintf("witness w1 %s ftp://x/\nquorum w1\n", c.VerifierKey), "not http(s)"},
	} {
		p, err := trustpolicy.Parse([]byte(tc.text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := New(p, Options{Origin: "a.example/log", Logger: quiet}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	_ = vkey
	// quorum none: a group that needs nothing.
	p, _ := trustpolicy.Parse([]byte("quorum none\n"))
	q, err := New(p, Options{Logger: quiet})
	if err != nil || q.Group().N != 0 || q.QuorumName() != "none" {
		t.Fatalf("quorum none: %v %+v", err, q.Group())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
