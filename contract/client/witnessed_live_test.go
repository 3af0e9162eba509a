package client_test

import (
	"context"
	"testing"

	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/internal/testutil/witnesstest"
)

// TestWitnessedDecision: against a real service with a real witness, the
// example policy answers deploy.production witnessed and demo.echo
// sequenced; the SDK accepts both and reports each level.
func TestWitnessedDecision(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{Witnessing: witnesstest.ForLog(t)})
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
