package gate_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	witnessserver "github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

// testWitness is a real witness server on a fixed loopback address that
// can be stopped and started again.
type testWitness struct {
	t    *testing.T
	c    *cosigner.Cosigner
	addr string
	dir  string
	mu   sync.Mutex
	srv  *http.Server
	st   *state.Store
	pol  *trustpolicy.Policy
}

func newTestWitness(t *testing.T) *testWitness {
	skey, _, err := cosigner.Generate("witness.example/w1", cosigner.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cosigner.Parse(skey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &testWitness{t: t, c: c, addr: ln.Addr().String(), dir: t.TempDir()}
	ln.Close()
	t.Cleanup(w.stop)
	return w
}

// collector starts the witness for the log of key and returns the log's
// witness collection (quorum: w1).
func (w *testWitness) collector(t testing_T, key *ztlog.Key) *witnessing.Collector {
	w.start(key)
	text := fmt.Sprintf("log %s\nwitness w1 %s http://%s/\nquorum w1\n", key.VerifierKey, w.c.VerifierKey, w.addr)
	p, err := trustpolicy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	w.pol = p
	c, err := witnessing.New(p, witnessing.Options{Origin: key.Origin(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testing_T interface {
	Helper()
	Fatal(...any)
}

func (w *testWitness) start(key *ztlog.Key) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cfg, err := config.Parse("w1", []byte(fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, key.Origin(), key.VerifierKey)))
	if err != nil {
		w.t.Fatal(err)
	}
	if w.st == nil {
		if w.st, err = state.Open(w.dir); err != nil {
			w.t.Fatal(err)
		}
	}
	ws, err := witnessserver.New(witnessserver.Options{Cosigners: []*cosigner.Cosigner{w.c}, Store: w.st, Config: func() *config.Config { return cfg }})
	if err != nil {
		w.t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; i < 50; i++ { // the port may linger briefly after a stop
		if ln, err = net.Listen("tcp", w.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	w.srv = &http.Server{Handler: ws.Handler()}
	go w.srv.Serve(ln)
}

func (w *testWitness) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.srv != nil {
		w.srv.Close()
		w.srv = nil
	}
}

func (s *server) decideAs(action string) response {
	return s.mtls(agentID).do("POST", "/v1/actions", `{"action":"`+action+`","resource":"prod"}`)
}

// TestWitnessedAssurance: the example policy makes deploy.production
// witnessed. Its allow carries a receipt whose tlog-proof verifies offline
// under the trust policy; when the witness goes, no such allow is answered
// (a 503 naming the witness, then a committed deny naming it), while
// sequenced actions go on; when it comes back, witnessed allows do too
// (issue 18 finding 4).
func TestWitnessedAssurance(t *testing.T) {
	w := newTestWitness(t)
	s := newServer(t, options{witness: w, witnessWait: 1500 * time.Millisecond})
	s.register(agentID, "")
	want := receipt.Expect{Issuer: origin, Audience: brokerID.String(), Witnesses: w.pol}

	witnessedAllow := func(when string) {
		t.Helper()
		r := s.decideAs("deploy.production")
		if r.status != 200 {
			t.Fatalf("%s: deploy.production: %d %s, want 200", when, r.status, r.body)
		}
		var ar api.ActionResponse
		r.json(t, &ar)
		want.Now = time.Now()
		c, err := receipt.Verify(ar.Receipt, s.jwks(), want)
		if err != nil {
			t.Fatalf("%s: the witnessed receipt does not verify offline: %v", when, err)
		}
		if c.Assurance != receipt.Witnessed {
			t.Errorf("%s: receipt assurance %q, want witnessed", when, c.Assurance)
		}
		if !strings.Contains(c.TLogProof, "— witness.example/w1 ") {
			t.Errorf("%s: the receipt's checkpoint has no cosignature of w1:\n%s", when, c.TLogProof)
		}
	}
	witnessedAllow("witness up")

	// A sequenced action: a receipt without witness evidence.
	r := s.decideAs("demo.echo")
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status != 200 {
		t.Fatalf("demo.echo: %d", r.status)
	}
	if rc, _ := receipt.Parse(ar.Receipt); rc == nil || rc.Claims.Assurance != "" {
		t.Errorf("demo.echo's receipt: %+v, want a sequenced receipt", rc)
	}

	// The witness goes down.
	w.stop()
	sawTimeout, sawDeny := false, false
	var denyIndex uint64
	for i := 0; i < 6 && !sawDeny; i++ {
		r := s.decideAs("deploy.production")
		switch r.status {
		case 200:
			t.Fatalf("witness down: deploy.production allowed: %s", r.body)
		case 503:
			var e httperr.Error
			r.json(t, &e)
			if e.Code != "witness_timeout" {
				t.Fatalf("witness down: 503 %s, want witness_timeout", r.body)
			}
			if !strings.Contains(e.Message, "w1: unreachable") {
				t.Errorf("witness down: the 503 does not name the missing witness: %s", e.Message)
			}
			sawTimeout = true
		case 403:
			var ar api.ActionResponse
			r.json(t, &ar)
			if ar.Receipt != "" {
				t.Fatalf("a deny with a receipt: %s", r.body)
			}
			if len(ar.Reasons) != 1 || ar.Reasons[0].Code != gate.ReasonQuorumLost {
				t.Fatalf("witness down: reasons %+v, want %s", ar.Reasons, gate.ReasonQuorumLost)
			}
			if !strings.Contains(ar.Reasons[0].Message, "w1: unreachable") {
				t.Errorf("the deny does not name the missing witness: %s", ar.Reasons[0].Message)
			}
			denyIndex = ar.Log.Index
			sawDeny = true
		default:
			t.Fatalf("witness down: %d %s", r.status, r.body)
		}
	}
	if !sawDeny {
		t.Fatalf("witness down: never a committed deny naming the lost quorum (saw a timeout: %v)", sawTimeout)
	}
	// Sequenced actions are not held up by the witness.
	if r := s.decideAs("demo.echo"); r.status != 200 {
		t.Errorf("witness down: demo.echo %d, want 200 (sequenced)", r.status)
	}

	// The witness comes back: witnessed allows resume once the log has
	// published a cosigned checkpoint again (the quorum state follows).
	w.start(s.key)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.decideAs("deploy.production")
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("witness back: deploy.production still %d %s", r.status, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	witnessedAllow("witness back")
	// The deny answered while the witness was down is in the log.
	d, ok := mustParse(t, s.entry(denyIndex)).(*entry.Decision)
	if !ok || d.Effect != entry.Deny || d.Reasons[0].Code != gate.ReasonQuorumLost {
		t.Errorf("committed entry %d: %+v, want the deny with %s", denyIndex, d, gate.ReasonQuorumLost)
	}
}

// TestWitnessedWithoutWitnessPolicy: a log without witnesses cannot give a
// witnessed allow; it commits a deny saying so.
func TestWitnessedWithoutWitnessPolicy(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	r := s.decideAs("deploy.production")
	if r.status != 403 {
		t.Fatalf("deploy.production without witnesses: %d %s, want 403", r.status, r.body)
	}
	var ar api.ActionResponse
	r.json(t, &ar)
	if len(ar.Reasons) != 1 || ar.Reasons[0].Code != gate.ReasonAssuranceUnavailable {
		t.Fatalf("reasons %+v, want %s", ar.Reasons, gate.ReasonAssuranceUnavailable)
	}
}

func mustParse(t *testing.T, leaf []byte) entry.Entry {
	t.Helper()
	e, err := entry.Parse(leaf)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
