package results_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/gate/results"
)

// memClaims keeps claims in memory, by the rules of results.Claims (the
// database one, sqlclaims, is tested against MariaDB).
type memClaims struct {
	mu sync.Mutex
	m  map[uint64]results.Claim
}

func (c *memClaims) Claim(_ context.Context, d uint64, statement, owner string, now time.Time) (results.Claim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[d]; ok {
		return cl, nil
	}
	c.m[d] = results.Claim{Statement: statement, Owner: owner, At: now}
	return c.m[d], nil
}

func (c *memClaims) TakeOver(_ context.Context, d uint64, prev, owner string, now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.m[d]
	if !ok || cl.Owner != prev {
		return false, nil
	}
	c.m[d] = results.Claim{Statement: cl.Statement, Owner: owner, At: now}
	return true, nil
}

func (c *memClaims) Release(_ context.Context, d uint64, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[d].Owner == owner {
		delete(c.m, d)
	}
	return nil
}

func (c *memClaims) get(d uint64) results.Claim {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[d]
}

func (c *memClaims) set(d uint64, cl results.Claim) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[d] = cl
}

// TestResultClaims: with claims (several frontends), a decision claimed
// for another statement is 409 result_exists naming it; claimed for the
// same statement by another attempt, 503 busy within the lease and taken
// over after it; unclaimed, claimed by this attempt and committed.
func TestResultClaims(t *testing.T) {
	claims := &memClaims{m: map[uint64]results.Claim{}}
	f := &fixture{t: t}
	f.s = contracttest.Start(t, contracttest.Options{ResultClaims: claims})
	f.agent, f.broker = f.s.SVID(contracttest.AgentID), f.s.SVID(contracttest.BrokerID)
	type attempt struct {
		name   string
		claim  func(d uint64, digest string) // the claim before the post
		status int
		has    string
	}
	for _, tc := range []attempt{
		{"claimed for another statement", func(d uint64, _ string) {
			claims.set(d, results.Claim{Statement: "sha256:" + strings.Repeat("ab", 32), Owner: "other", At: time.Now()})
		}, 409, `"code":"result_exists"`},
		{"claimed for this statement within the lease", func(d uint64, digest string) {
			claims.set(d, results.Claim{Statement: digest, Owner: "other", At: time.Now()})
		}, 503, `"code":"busy"`},
		{"claimed for this statement past the lease", func(d uint64, digest string) {
			claims.set(d, results.Claim{Statement: digest, Owner: "dead", At: time.Now().Add(-results.DefaultClaimLease - time.Second)})
		}, 200, `"outcome":"ok"`},
		{"unclaimed", func(uint64, string) {}, 200, `"outcome":"ok"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			d := f.decide("demo.echo")
			if d.Decision != "allow" {
				t.Fatalf("decision %s", d.Decision)
			}
			signed := f.sign(f.broker, d.ActionDigest, f.result(d))
			digest := attest.Digest(signed.Envelope)
			tc.claim(d.Log.Index, digest)
			status, b := f.post(f.broker, "/v1/results", string(broker.ResultBody(signed)))
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, b, tc.status)
			}
			if !strings.Contains(string(b), tc.has) {
				t.Errorf("answer %s lacks %s", b, tc.has)
			}
			if tc.status == 409 && !strings.Contains(string(b), strings.Repeat("ab", 32)) {
				t.Errorf("the 409 %s does not name the claimed statement", b)
			}
			if tc.status == 200 {
				cl := claims.get(d.Log.Index)
				if cl.Statement != digest {
					t.Errorf("claim statement %s, want %s", cl.Statement, digest)
				}
				if cl.Owner == "dead" || cl.Owner == "" {
					t.Errorf("claim owner %q after the commit, want this attempt's", cl.Owner)
				}
			}
		})
	}
}
