package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
)

// openAllow is an allow still waiting for its result.
type openAllow struct {
	Time   int64  `json:"t"` // unix nanoseconds
	Leaf   hash32 `json:"l"`
	Action hash32 `json:"a"`
	Broker string `json:"b,omitempty"`
}

// lateResult is a result for an allow that had left the open set; its
// link is checked after the pass, against the verified tree.
type lateResult struct {
	Index    uint64
	Decision uint64
	Time     int64
	Leaf     hash32
	Action   hash32
	Broker   string
}

// completeness runs the entry-level checks in log order. Its memory is the
// allows open within the window (at most maxOpen), one bit per allow that
// got a result, one per allow dropped from the open set, the currently
// revoked agents, and at most maxLate late results.
type completeness struct {
	f       *findings
	window  time.Duration
	maxOpen int
	maxLate int

	open    map[uint64]openAllow
	queue   []uint64 // open allow indices in log order; closed ones are skipped lazily
	closed  *bitmap  // allows that have a result
	evicted *bitmap  // allows dropped from the open set without a result
	revoked map[string]uint64
	logTime int64
	late    []lateResult
	kinds   map[string]uint64
	// capacityEvicted counts allows dropped while still within the window.
	capacityEvicted uint64
	lateDropped     uint64
}

func newCompleteness(f *findings, window time.Duration, maxOpen, maxLate int) *completeness {
	return &completeness{
		f: f, window: window, maxOpen: maxOpen, maxLate: maxLate,
		open: map[uint64]openAllow{}, closed: newBitmap(), evicted: newBitmap(),
		revoked: map[string]uint64{}, kinds: map[string]uint64{},
	}
}

func digestBytes(d string) (out hash32) {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok {
		hex.Decode(out[:], []byte(h))
	}
	return out
}

func entryTime(e entry.Entry) int64 {
	var s string
	switch e := e.(type) {
	case *entry.Decision:
		s = e.Time
	case *entry.Result:
		s = e.Time
	case *entry.Agent:
		s = e.Time
	case *entry.Policy:
		s = e.Time
	}
	t, err := entry.ParseTime(s)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// entry processes the entry at index i, whose leaf hash is leaf.
func (c *completeness) entry(i uint64, leaf []byte, e entry.Entry) {
	t := entryTime(e)
	switch e := e.(type) {
	case *entry.Decision:
		c.kinds["decision."+string(e.Effect)]++
		if e.Effect != entry.Allow {
			break
		}
		c.f.checked(CheckRevocation, 1)
		if at, ok := c.revoked[e.Actor]; ok {
			c.f.add(CheckRevocation, Fail, idx(i), fmt.Sprintf("entry %d allows %s for %s, revoked at entry %d and not registered again", i, e.Action, e.Actor, at))
		}
		a := openAllow{Time: t, Action: digestBytes(e.ActionDigest), Broker: e.Broker}
		copy(a.Leaf[:], leaf)
		c.open[i] = a
		c.queue = append(c.queue, i)
		if len(c.open) > c.maxOpen {
			c.evictOldest()
		} else if len(c.queue) > 2*len(c.open)+1024 {
			c.compact()
		}
	case *entry.Result:
		c.kinds["result"]++
		c.result(i, t, e)
	case *entry.Agent:
		c.kinds["agent."+e.Op]++
		if e.Op == entry.AgentRevoke {
			c.revoked[e.ID] = i
		} else {
			delete(c.revoked, e.ID)
		}
	case *entry.Policy:
		c.kinds["policy"]++
	}
	if t > c.logTime {
		c.logTime = t
		c.expire(t, i)
	}
}

// evictOldest drops the oldest open allow to keep within maxOpen.
func (c *completeness) evictOldest() {
	c.compact()
	if len(c.queue) == 0 {
		return
	}
	h := c.queue[0]
	c.queue = c.queue[1:]
	delete(c.open, h)
	c.evicted.set(h)
	c.capacityEvicted++
	if c.capacityEvicted == 1 {
		// Said now as well as in the summary: a monitor never finishes.
		c.f.add(CheckCapacity, Warn, idx(h), fmt.Sprintf("more than %d allows are open at once: the oldest (entry %d) and others after it leave tracking inside their window, and a missing result for them is not reported (raise Options.MaxOpen)", c.maxOpen, h))
	}
}

// compact drops closed allows from the head of the queue and releases the
// queue's backing array when most of it is consumed.
func (c *completeness) compact() {
	for len(c.queue) > 0 {
		if _, ok := c.open[c.queue[0]]; ok {
			break
		}
		c.queue = c.queue[1:]
	}
	if len(c.queue) > 2*len(c.open)+1024 {
		// Allows closed behind an open one at the head: keep the queue
		// within twice the open set (memory bounded by MaxOpen, not by
		// the log).
		kept := make([]uint64, 0, 2*len(c.open)+16)
		for _, h := range c.queue {
			if _, ok := c.open[h]; ok {
				kept = append(kept, h)
			}
		}
		c.queue = kept
	} else if cap(c.queue) > 1024 && len(c.queue) < cap(c.queue)/4 {
		c.queue = append(make([]uint64, 0, 2*len(c.queue)), c.queue...)
	}
}

// expire reports and drops allows whose window has passed by time now
// (log time, or the auditor's clock at the end).
func (c *completeness) expire(now int64, at uint64) {
	for c.compact(); len(c.queue) > 0; c.compact() {
		h := c.queue[0]
		a := c.open[h]
		if a.Time+int64(c.window) >= now {
			return
		}
		delete(c.open, h)
		c.queue = c.queue[1:]
		c.evicted.set(h)
		c.f.checked(CheckResultDue, 1)
		where := fmt.Sprintf("the log reached %s at entry %d", fmtTime(now), at)
		if at == ^uint64(0) {
			where = "audited at " + fmtTime(now)
		}
		c.f.add(CheckResultDue, Warn, idx(h), fmt.Sprintf("allow at entry %d (%s) has no result within %s; %s", h, fmtTime(a.Time), c.window, where))
	}
}

func (c *completeness) result(i uint64, t int64, r *entry.Result) {
	c.f.checked(CheckResultLink, 1)
	c.f.checked(CheckResultOnce, 1)
	d := r.DecisionIndex
	var leaf hash32
	if h, err := base64.StdEncoding.DecodeString(r.DecisionLeafHash); err == nil {
		copy(leaf[:], h)
	}
	action := digestBytes(r.ActionDigest)
	if d >= i {
		c.f.add(CheckResultLink, Fail, idx(i), fmt.Sprintf("result at entry %d links to entry %d, which is not before it", i, d))
		return
	}
	if a, ok := c.open[d]; ok {
		delete(c.open, d)
		c.closed.set(d)
		c.f.checked(CheckResultDue, 1)
		c.link(i, d, t, leaf, action, r.Broker, a)
		return
	}
	switch {
	case c.closed.has(d):
		c.f.add(CheckResultOnce, Fail, idx(i), fmt.Sprintf("result at entry %d is a second result for the allow at entry %d", i, d))
	case c.evicted.has(d):
		c.closed.set(d)
		if len(c.late) >= c.maxLate {
			c.lateDropped++
			// Said now as well as in the summary: a monitor never finishes.
			c.f.add(CheckCapacity, Fail, idx(i), fmt.Sprintf("result at entry %d links to entry %d, which left tracking, and more than %d such late results are waiting: it is not checked (raise Options.MaxLate)", i, d, c.maxLate))
			return
		}
		c.late = append(c.late, lateResult{Index: i, Decision: d, Time: t, Leaf: leaf, Action: action, Broker: r.Broker})
	default:
		c.f.add(CheckResultLink, Fail, idx(i), fmt.Sprintf("result at entry %d links to entry %d, which is not an allow decision", i, d))
	}
}

// link checks a result against its allow.
func (c *completeness) link(i, d uint64, t int64, leaf, action hash32, broker string, a openAllow) {
	switch {
	case !bytes.Equal(leaf[:], a.Leaf[:]):
		c.f.add(CheckResultLink, Fail, idx(i), fmt.Sprintf("result at entry %d names decision leaf hash %s, but entry %d's leaf hash is %s", i, base64.StdEncoding.EncodeToString(leaf[:]), d, base64.StdEncoding.EncodeToString(a.Leaf[:])))
	case action != a.Action:
		c.f.add(CheckResultLink, Fail, idx(i), fmt.Sprintf("result at entry %d has action digest sha256:%x, the allow at entry %d sha256:%x", i, action, d, a.Action))
	case a.Broker != "" && broker != a.Broker:
		c.f.add(CheckResultLink, Fail, idx(i), fmt.Sprintf("result at entry %d is from broker %s, the allow at entry %d is for %s", i, broker, d, a.Broker))
	case t < a.Time:
		c.f.add(CheckResultLink, Fail, idx(i), fmt.Sprintf("result at entry %d (%s) is older than its allow at entry %d (%s)", i, fmtTime(t), d, fmtTime(a.Time)))
	}
}

// finish reports allows whose window has passed by now (zero: the log's
// own latest time) and the limits that were reached.
func (c *completeness) finish(now time.Time) uint64 {
	n := c.logTime
	at := ^uint64(0)
	if !now.IsZero() {
		n = now.UnixNano()
	}
	c.expire(n, at)
	c.f.checked(CheckCapacity, 1)
	if c.capacityEvicted > 0 {
		c.f.add(CheckCapacity, Warn, nil, fmt.Sprintf("%d allows were dropped from tracking while inside the window (more than %d open at once); a missing result for them is not reported (raise Options.MaxOpen)", c.capacityEvicted, c.maxOpen))
	}
	if c.lateDropped > 0 {
		c.f.add(CheckCapacity, Fail, nil, fmt.Sprintf("%d late results were not linked to their allows (more than %d late results); raise Options.MaxLate", c.lateDropped, c.maxLate))
	}
	return uint64(len(c.open))
}
