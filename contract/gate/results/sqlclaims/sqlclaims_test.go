package sqlclaims_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/contract/gate/results/sqlclaims"
	"github.com/zt-infra/ztlog/internal/testutil/awstest"
)

// TestClaimsRace: eight attempts (two statements) claim one decision at
// once, each on its own connection pool as separate frontends would; every
// one is told the same claim, made by one of them. Take-over needs the
// current holder; release frees the decision for another claim.
func TestClaimsRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB; skipped with -short")
	}
	db := awstest.StartMariaDB(t)
	ctx := context.Background()
	open := func() *sqlclaims.Claims {
		c, err := sqlclaims.Open(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	now := time.Now()
	var wg sync.WaitGroup
	got := make([]results.Claim, 8)
	for i := range got {
		c := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := c.Claim(ctx, 7, fmt.Sprintf("sha256:%d", i%2), fmt.Sprintf("owner%d", i), now)
			if err != nil {
				t.Error(err)
			}
			got[i] = cl
		}()
	}
	wg.Wait()
	winner := got[0].Owner
	for i, cl := range got {
		if cl.Owner != winner {
			t.Errorf("attempt %d was told owner %s, attempt 0 %s", i, cl.Owner, winner)
		}
	}
	var wi int
	if _, err := fmt.Sscanf(winner, "owner%d", &wi); err != nil {
		t.Fatalf("winner %q is none of the attempts", winner)
	}
	if want := fmt.Sprintf("sha256:%d", wi%2); got[0].Statement != want {
		t.Errorf("the claim's statement is %s, the winner's %s", got[0].Statement, want)
	}
	if got[0].At.UnixMilli() != now.UnixMilli() {
		t.Errorf("claimed at %v, want %v", got[0].At, now)
	}

	c := open()
	if ok, err := c.TakeOver(ctx, 7, "nobody", "late", now); err != nil || ok {
		t.Errorf("take-over from a non-holder: %v %v, want false", ok, err)
	}
	if ok, err := c.TakeOver(ctx, 7, winner, "late", now); err != nil || !ok {
		t.Errorf("take-over from the holder: %v %v, want true", ok, err)
	}
	if err := c.Release(ctx, 7, winner); err != nil {
		t.Fatal(err)
	}
	if cl, _ := c.Claim(ctx, 7, "sha256:x", "other", now); cl.Owner != "late" {
		t.Errorf("after a release by a former holder, the claim is %s's, want late's", cl.Owner)
	}
	if err := c.Release(ctx, 7, "late"); err != nil {
		t.Fatal(err)
	}
	if cl, _ := c.Claim(ctx, 7, "sha256:x", "other", now); cl.Owner != "other" {
		t.Errorf("after the holder released, the claim is %s's, want other's", cl.Owner)
	}
}
