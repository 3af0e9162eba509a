package audit

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Completeness costs memory for the allows open within the window (at most
// MaxOpen), not for the log: one allow that never gets a result, at the
// head of the queue and inside the window (a hostile log's entry times
// need not advance), must not pin the index of every later allow that did
// get its result.
func TestCompletenessQueueBounded(t *testing.T) {
	const maxOpen = 16
	c := newCompleteness(newFindings(10, nil), time.Hour, maxOpen, 16)
	ts := "2026-11-21T09:00:00Z"
	digest := "sha256:" + strings.Repeat("ab", 32)
	leaf := make([]byte, 32)
	allow := &entry.Decision{Time: ts, Effect: entry.Allow, Actor: "spiffe://t/a", ActionDigest: digest}
	i := uint64(0)
	c.entry(i, leaf, allow) // never gets a result
	i++
	const pairs = 100000
	for range pairs {
		d := i
		c.entry(d, leaf, allow)
		i++
		c.entry(i, leaf, &entry.Result{Time: ts, DecisionIndex: d, DecisionLeafHash: base64.StdEncoding.EncodeToString(leaf), ActionDigest: digest})
		i++
	}
	if len(c.open) > maxOpen+1 {
		t.Fatalf("open set: %d", len(c.open))
	}
	if len(c.queue) > 2*maxOpen+1025 {
		t.Fatalf("%d allows open (MaxOpen %d), but the queue holds %d indices (%d bytes): memory grows with the log, not with the open allows", len(c.open), maxOpen, len(c.queue), 8*cap(c.queue))
	}
}
