package results

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// DefaultClaimLease is how long a claim protects an attempt that has not
// committed its result entry yet. A retry of the same statement may take a
// claim over only after it: by then the first attempt's entry, if it was
// sequenced at all, has long been followed into the results index (the
// follow bound is about a second), so taking over never appends a second
// result.
const DefaultClaimLease = 30 * time.Second

// Claims is where frontends that share one log agree which statement
// becomes a decision's one result, before any of them appends it: a row
// keyed by the decision's index in a store all of them reach (sqlclaims:
// the log's MySQL-compatible database). One frontend alone needs none (the
// in-process index does it).
//
// The rule, for a statement S about decision D posted to any frontend:
//
//   - D's result already in the log (followed into the index): S itself is
//     answered with that entry (200), another statement gets 409
//     result_exists naming the entry.
//   - No claim for D: this attempt claims D for S, appends, answers.
//   - D claimed for another statement: 409 result_exists, naming the claim's
//     statement digest (the other broker's report wins).
//   - D claimed for S by another attempt (a retry on another frontend, or
//     two brokers posting one statement): 503 busy with Retry-After until
//     the entry is in the log, then 200 with it; an attempt silent for the
//     claim lease (its frontend died before appending) is taken over.
//
// The claim is released when an append fails for certain (the log
// answered an error), so a retry need not wait for the lease.
type Claims interface {
	// Claim claims decision for statement on behalf of owner, unless it is
	// claimed already; it returns the claim that stands.
	Claim(ctx context.Context, decision uint64, statement, owner string, now time.Time) (Claim, error)
	// TakeOver gives the claim held by prev to owner; false if prev no
	// longer holds it.
	TakeOver(ctx context.Context, decision uint64, prev, owner string, now time.Time) (bool, error)
	// Release drops owner's claim on decision (a no-op if owner does not
	// hold it).
	Release(ctx context.Context, decision uint64, owner string) error
}

// Claim is a decision's claim: the statement digest, who holds it, since
// when.
type Claim struct {
	Statement string
	Owner     string
	At        time.Time
}

// newOwner names one attempt to commit a result.
func newOwner() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
