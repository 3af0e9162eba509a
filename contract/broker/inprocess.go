package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zt-infra/ztlog/internal/text"
)

// ReceiptIDs records the one-time ids (jti) of the receipts a broker
// honours: Claim returns nil the first time an id is claimed and an error
// wrapping ErrReplayed after. *Replay (a file, fsynced) is the one for a
// broker that is handed receipts by others; *InProcessReplay (memory) is
// only for a broker that honours nothing but the receipts it obtained
// itself, in its own process (broker.md, "Receipts obtained in process").
type ReceiptIDs interface {
	Claim(jti string, exp time.Time) error
}

// InProcessReplay is a ReceiptIDs in memory, for a broker that is its own
// caller: it obtains each receipt from its own decision request (mutual
// TLS to ztlog), performs the call at once in the same process, and never
// accepts a receipt from outside (the MCP gateway). Such a receipt exists
// nowhere else — ztlog signs it for that one answer and keeps only its id
// in the log — so no one else can present it, to this process or to any
// other broker with the same SVID, and its one-time id needs no record
// that survives the process: a restarted process holds none of the old
// receipts. Claim still refuses an id claimed before (a bug that would
// perform a call twice), and keeps ids as *Replay does, until their
// receipt expired plus the leeway (after that the receipt itself is
// refused as expired).
type InProcessReplay struct {
	leeway time.Duration
	now    func() time.Time
	mu     sync.Mutex
	seen   map[string]int64 // jti → exp, Unix seconds
	sweep  int              // prune expired ids when seen reaches this size
}

// minSweep is the size of the set below which expired ids are not pruned.
const minSweep = 1024

// NewInProcessReplay returns an empty in-memory set of claimed ids that
// keeps each until its receipt expired plus leeway. now is the clock (nil:
// time.Now).
func NewInProcessReplay(leeway time.Duration, now func() time.Time) *InProcessReplay {
	if now == nil {
		now = time.Now
	}
	return &InProcessReplay{leeway: leeway, now: now, seen: map[string]int64{}, sweep: minSweep}
}

// Claim records jti, expiring at exp, and returns nil; or ErrReplayed if
// it was claimed before (and has not expired plus the leeway since).
func (r *InProcessReplay) Claim(jti string, exp time.Time) error {
	if jti == "" {
		return errors.New("replay: empty receipt id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[jti]; ok {
		return fmt.Errorf("%w: receipt id %q was honoured before", ErrReplayed, text.Cut(jti, 80))
	}
	if len(r.seen) >= r.sweep {
		r.prune()
	}
	r.seen[jti] = exp.Unix()
	return nil
}

// prune drops the ids whose receipt expired more than the leeway ago, and
// sets the next sweep at twice what is left (amortized constant per
// claim). Under mu.
func (r *InProcessReplay) prune() {
	cut := r.now().Add(-r.leeway).Unix()
	for id, exp := range r.seen {
		if exp < cut {
			delete(r.seen, id)
		}
	}
	r.sweep = max(minSweep, 2*len(r.seen))
}

// Len is the number of ids remembered.
func (r *InProcessReplay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}
