package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zt-infra/ztlog/contract/entry"
	ztlog "github.com/zt-infra/ztlog/log"
)

// DefaultFollowInterval is how often the decision path reads the published
// checkpoint to apply entries that other frontends appended to the same log
// (agents, results, policy versions). With the AWS driver's one-second
// checkpoints, a change made through one frontend is in force on every
// frontend within about CheckpointInterval + FollowInterval + one read of
// the new entries (see README, "Many frontends, one log").
const DefaultFollowInterval = 250 * time.Millisecond

// followStaleAfter is how long the follower may fail to read the log
// before /readyz says so.
const followStaleAfter = 10 * time.Second

// policySeen is the latest policy entry read from the log.
type policySeen struct {
	index  uint64
	hash   string
	engine string
	set    bool
}

// follower keeps the decision path's state beside the log (the agent
// registry, which decisions have a result, the latest policy version)
// current with the log: once from the start at rebuild, then whenever the
// published checkpoint grows. Several frontends appending to one log (the
// AWS or GCP driver) so all hold the same state, within the follow bound.
// Entries this frontend committed itself were applied when they were
// sequenced; applying them again changes nothing.
type follower struct {
	p        *mountedPath
	s        *Service
	interval time.Duration
	applied  prometheus.Gauge

	mu       sync.Mutex
	next     uint64 // entries [0, next) are applied
	caughtUp time.Time
	lastErr  error
	policy   policySeen
	reloaded uint64 // the policy entry a reload was last started for
}

func newFollower(p *mountedPath, s *Service, interval time.Duration) *follower {
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	f := &follower{p: p, s: s, interval: interval,
		applied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztlog_follow_applied_size",
			Help: "Log entries the decision path has applied (agents, results, policy versions), including those other frontends appended."})}
	s.registry.MustRegister(f.applied)
	return f
}

// apply applies one entry, in index order.
func (f *follower) apply(i uint64, leaf []byte) error {
	if err := f.p.agents.Replay(i, leaf); err != nil {
		return err
	}
	if err := f.p.results.Replay(i, leaf); err != nil {
		return err
	}
	if bytes.Contains(leaf, []byte(`"kind":"policy"`)) {
		e, err := entry.Parse(leaf)
		if err != nil {
			return fmt.Errorf("policy: entry %d looks like a policy entry but does not parse: %w", i, err)
		}
		if pe, ok := e.(*entry.Policy); ok {
			f.mu.Lock()
			f.policy = policySeen{index: i, hash: pe.Hash, engine: pe.Engine, set: true}
			f.mu.Unlock()
		}
	}
	return nil
}

// rebuild applies every entry of the log (Log.Replay: once a published
// checkpoint covers all that is integrated).
func (f *follower) rebuild(ctx context.Context) error {
	var next uint64
	err := f.s.log.Replay(ctx, func(i uint64, leaf []byte) error {
		next = i + 1
		return f.apply(i, leaf)
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.next, f.caughtUp = next, time.Now()
	f.mu.Unlock()
	f.applied.Set(float64(next))
	return nil
}

// run follows the log until ctx ends.
func (f *follower) run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := f.step(ctx)
		f.mu.Lock()
		f.lastErr = err
		if err == nil {
			f.caughtUp = time.Now()
		}
		f.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			f.s.logger.Warn("following the log", "error", err.Error())
		}
		f.reloadIfBehind(ctx)
	}
}

// step reads the published checkpoint and applies the entries it adds.
func (f *follower) step(ctx context.Context) error {
	cp, err := f.s.log.Refresh(ctx)
	if errors.Is(err, ztlog.ErrNoCheckpoint) {
		return nil // nothing published yet: nothing to follow
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	next := f.next
	f.mu.Unlock()
	if cp.Size <= next {
		return nil
	}
	done := next
	err = f.s.log.Scan(ctx, next, cp.Size, func(i uint64, leaf []byte) error {
		if err := f.apply(i, leaf); err != nil {
			return err
		}
		done = i + 1
		return nil
	})
	f.mu.Lock()
	f.next = done
	f.mu.Unlock()
	f.applied.Set(float64(done))
	return err
}

// behind returns the log's latest policy entry when it is another version
// than the one in force here and newer than this frontend's own entry.
func (f *follower) behind() (policySeen, bool) {
	if f.p.policy == nil {
		return policySeen{}, false
	}
	st := f.p.policy.Status()
	f.mu.Lock()
	seen := f.policy
	f.mu.Unlock()
	if !seen.set || seen.index <= st.LogIndex || seen.hash == st.Hash {
		return seen, false
	}
	return seen, true
}

// reloadIfBehind re-reads this frontend's policy files once for each newer
// policy version another frontend committed: where frontends share the
// policy source (one ConfigMap, one bundle), this one then commits and puts
// the same version in force; where its files still hold another version,
// it stays as it is and /readyz names both hashes.
func (f *follower) reloadIfBehind(ctx context.Context) {
	seen, behind := f.behind()
	if !behind {
		return
	}
	f.mu.Lock()
	if f.reloaded == seen.index+1 {
		f.mu.Unlock()
		return
	}
	f.reloaded = seen.index + 1
	f.mu.Unlock()
	f.s.logger.Info("another frontend committed a policy version; re-reading the policy", "log_index", seen.index, "hash", seen.hash)
	go f.p.policy.Reload(ctx, "log")
}

// ErrPolicyBehind is the /readyz "policy" failure of a frontend whose
// policy in force is not the log's latest policy version.
var ErrPolicyBehind = errors.New("the policy in force here is not the log's latest policy version")

// checkPolicy is the /readyz "policy" check.
func (f *follower) checkPolicy(context.Context) error {
	seen, behind := f.behind()
	if !behind {
		return nil
	}
	st := f.p.policy.Status()
	return fmt.Errorf("%w: this frontend has %s (%s, log index %d), the log's latest is %s (%s, log index %d); roll the same policy out to every frontend",
		ErrPolicyBehind, st.Hash, st.Engine, st.LogIndex, seen.hash, seen.engine, seen.index)
}

// checkFollow is the /readyz "follow" check: the log was read recently.
func (f *follower) checkFollow(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if age := time.Since(f.caughtUp); age > followStaleAfter && f.lastErr != nil {
		return fmt.Errorf("entries other frontends append are not applied: the log has not been read for %s: %w", age.Round(time.Second), f.lastErr)
	}
	return nil
}

// Followed is how far the decision path has applied the log: entries
// [0, Followed) are in its agent registry, results index and policy view.
func (s *Service) Followed() uint64 {
	if s.decision == nil || s.decision.follow == nil {
		return 0
	}
	f := s.decision.follow
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}
