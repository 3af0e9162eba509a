package agents_test

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/gate/agents"
)

// A revoke whose append is abandoned (POST /v1/agents runs it under the
// decision timeout and the request's context) returns an error, but the
// entry may still be sequenced, and here it is: the running registry (which
// the gate consults) must then say revoked too, not keep the agent
// registered until a restart replays the log.
func TestAbandonedRevokeIsAppliedWhenSequenced(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	l := s.Svc.Log()
	reg := agents.New(l)
	id := spiffeid.RequireFromPath(contracttest.TD, "/agent/review").String()
	ctx := context.Background()
	if _, _, _, err := reg.Commit(ctx, &api.AgentRequest{Op: "register", ID: id}, contracttest.AdminID.String(), "rev-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	_, _, _, err := reg.Commit(short, &api.AgentRequest{Op: "revoke", ID: id}, contracttest.AdminID.String(), "rev-2", time.Now())
	if err == nil {
		t.Skip("the revoke was sequenced within a nanosecond: nothing abandoned to test")
	}
	// The abandoned entry is sequenced shortly; the registry follows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if a, _ := reg.Lookup(id); a.Status == agents.Revoked || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	fromLog, err := agents.Rebuild(rctx, l)
	if err != nil {
		t.Fatal(err)
	}
	inLog, _ := fromLog.Lookup(id)
	running, _ := reg.Lookup(id)
	if inLog.Status != agents.Revoked || inLog.Status != running.Status {
		t.Fatalf("the log says %s is %s (index %d), the running registry says %s", id, inLog.Status, inLog.Index, running.Status)
	}
}
