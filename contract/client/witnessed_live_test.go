package client_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	witnessserver "github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

// realWitness runs a real witness server on 127.0.0.1 for the log of key
// and returns the log's witness collection and policy (quorum: that
// witness), for contracttest.Options.Witnessing.
func realWitness(t *testing.T) func(*ztlog.Key) (*witnessing.Collector, string) {
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

// TestWitnessedDecision: against a real service with a real witness, the
// example policy answers deploy.production witnessed and demo.echo
// sequenced; the SDK accepts both and reports each level.
func TestWitnessedDecision(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{Witnessing: realWitness(t)})
	c := newClient(t, s, s.URL, nil)
	ctx := context.Background()

	d, err := c.Decide(ctx, client.Request{Action: "deploy.production", Resource: "demo://hello"})
	if err != nil {
		t.Fatalf("deploy.production: %v", err)
	}
	if !d.Allow {
		t.Fatalf("deploy.production denied: %+v", d.Response.Reasons)
	}
	if d.Assurance != client.Witnessed {
		t.Errorf("deploy.production assurance %q, want %q", d.Assurance, client.Witnessed)
	}
	if d.Receipt.TLogProof == "" {
		t.Errorf("a witnessed allow whose receipt carries no tlog_proof")
	}

	d, err = c.Decide(ctx, client.Request{Action: "demo.echo", Resource: "demo://hello", Args: map[string]any{"text": "hi"}})
	if err != nil {
		t.Fatalf("demo.echo: %v", err)
	}
	if d.Assurance != client.Sequenced {
		t.Errorf("demo.echo assurance %q, want %q", d.Assurance, client.Sequenced)
	}

	ran := ""
	err = c.GuardedCall(ctx, client.Request{Action: "deploy.production", Resource: "demo://hello"},
		func(ctx context.Context, d *client.Decision) error { ran = d.Assurance; return nil })
	if err != nil {
		t.Fatalf("guarded deploy.production: %v", err)
	}
	if ran != client.Witnessed {
		t.Errorf("the guarded call ran with assurance %q, want %q", ran, client.Witnessed)
	}
}
