package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestInProcessReplayRefusesASecondClaim(t *testing.T) {
	r := NewInProcessReplay(5*time.Second, nil)
	exp := time.Now().Add(time.Minute)
	if err := r.Claim("jti-1", exp); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := r.Claim("jti-1", exp); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second claim: %v, want ErrReplayed", err)
	}
	if err := r.Claim("jti-2", exp); err != nil {
		t.Fatalf("another id: %v", err)
	}
	if err := r.Claim("", exp); err == nil {
		t.Fatal("an empty id was claimed")
	}
}

// Ids are kept until their receipt expired plus the leeway, as the replay
// file keeps them: one that has not is still refused after a prune; one
// that has is forgotten (its receipt is refused as expired anyway).
func TestInProcessReplayKeepsIdsUntilExpiryPlusLeeway(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := NewInProcessReplay(5*time.Second, func() time.Time { return now })
	if err := r.Claim("old", now.Add(-6*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Claim("within-leeway", now.Add(-4*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Fill the set to its sweep size: the next claim prunes.
	for i := range minSweep - 2 {
		if err := r.Claim(fmt.Sprint("live-", i), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Claim("trigger", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Len(), minSweep; got != want {
		t.Errorf("%d ids kept after the prune, want %d (all but the one expired beyond the leeway)", got, want)
	}
	if err := r.Claim("within-leeway", now.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Errorf("an id within the leeway was forgotten: %v", err)
	}
	if err := r.Claim("live-0", now.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Errorf("a live id was forgotten: %v", err)
	}
	if err := r.Claim("old", now.Add(time.Minute)); err != nil {
		t.Errorf("an id expired beyond the leeway is still kept: %v", err)
	}
}
