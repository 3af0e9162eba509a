package broker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	witnessserver "github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

// witnessFor runs a real witness server in-process for the log of key and
// returns the log's witness collection and policy (quorum: that witness).
func witnessFor(t *testing.T) func(*ztlog.Key) (*witnessing.Collector, string) {
	return func(key *ztlog.Key) (*witnessing.Collector, string) {
		skey, _, err := cosigner.Generate("witness.example/w1", cosigner.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := cosigner.Parse(skey)
		cfg, err := config.Parse("w1", []byte(fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, key.Origin(), key.VerifierKey)))
		if err != nil {
			t.Fatal(err)
		}
		st, err := state.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ws, err := witnessserver.New(witnessserver.Options{Cosigners: []*cosigner.Cosigner{c}, Store: st, Config: func() *config.Config { return cfg }})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: ws.Handler()}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close(); st.Close() })
		text := fmt.Sprintf("log %s\nwitness w1 %s http://%s/\nquorum w1\n", key.VerifierKey, c.VerifierKey, ln.Addr())
		p, err := trustpolicy.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		col, err := witnessing.New(p, witnessing.Options{Origin: key.Origin(), Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return col, text
	}
}

// TestWitnessedReceiptAtTheBroker: the example policy makes
// deploy.production witnessed. A broker holding the log's trust policy
// verifies the receipt's cosigned checkpoint and inclusion proof offline
// and runs the work; a non-strict broker without the policy refuses it
// before anything runs, instead of taking the issuer's word (issue 18
// finding 4).
func TestWitnessedReceiptAtTheBroker(t *testing.T) {
	f := newFixture(t)
	f.s = contracttest.Start(t, contracttest.Options{Witnessing: witnessFor(t)})
	f.agent = f.s.SVID(contracttest.AgentID)
	pol, err := trustpolicy.Parse([]byte(f.s.TrustPolicy()))
	if err != nil {
		t.Fatal(err)
	}
	m := capability.Strict(t.TempDir(), "echo")

	w, ar := f.work("deploy.production", m, "echo", "hi")
	r, err := receipt.Parse(ar.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Claims.Assurance != receipt.Witnessed {
		t.Fatalf("deploy.production's receipt is %q, want witnessed", r.Claims.Assurance)
	}
	blind := f.broker(contracttest.BrokerID)
	_, err = blind.Handle(context.Background(), w)
	ref, ok := broker.AsRefused(err)
	if !ok || ref.Code != broker.RefuseUnproven {
		t.Fatalf("a broker without the trust policy handed a witnessed receipt: %v, want %s", err, broker.RefuseUnproven)
	}

	checking := f.broker(contracttest.BrokerID, func(c *broker.Config) { c.Witnesses = pol })
	rep, err := checking.Handle(context.Background(), w)
	if err != nil {
		t.Fatalf("a broker with the trust policy refused a witnessed receipt: %v", err)
	}
	if rep.Predicate.Outcome != "ok" {
		t.Errorf("outcome %q, want ok", rep.Predicate.Outcome)
	}
}
