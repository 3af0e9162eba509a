package broker_test

import (
	"context"
	"testing"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/testutil/witnesstest"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// TestWitnessedReceiptAtTheBroker: the example policy makes
// deploy.production witnessed. A broker holding the log's trust policy
// verifies the receipt's cosigned checkpoint and inclusion proof offline
// and runs the work; a non-strict broker without the policy refuses it
// before anything runs, instead of taking the issuer's word (issue 18
// finding 4).
func TestWitnessedReceiptAtTheBroker(t *testing.T) {
	f := newFixture(t)
	f.s = contracttest.Start(t, contracttest.Options{Witnessing: witnesstest.ForLog(t)})
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
