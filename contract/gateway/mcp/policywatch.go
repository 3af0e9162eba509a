package mcp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// MinPolicyWatchInterval is the shortest Config.PolicyWatchInterval
// accepted; the default is PossibleTTL.
const MinPolicyWatchInterval = time.Second

// watchLogEvery is how often a warning that repeats (the policy watcher's
// failures, an unfiltered tools/list, while ztlog is down for an hour) is
// logged again; the lines held back in between are counted in the next
// one ("suppressed"). Gateway.limited applies it.
const watchLogEvery = 10 * time.Minute

// shownAnswers are the answers behind what tools/list last showed, per
// action: hidden (answered "never") or shown, and the generation of the
// answer (possibleCache.store). Clients are told when one of them turns.
type shownAnswers struct {
	mu      sync.Mutex
	actions map[string]shownAnswer
}

type shownAnswer struct {
	hidden bool
	gen    uint64
}

// update records answers of generation gen and reports whether an action
// recorded before turned: hidden now and shown then, or the reverse. An
// action not seen before is no change (no client was shown anything
// else); an answer older than the one recorded (a tools/list that read the
// cache just before the watcher stored newer answers) is passed over.
func (s *shownAnswers) update(answers map[string]string, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actions == nil {
		s.actions = map[string]shownAnswer{}
	}
	turned := false
	for a, v := range answers {
		now := shownAnswer{hidden: v == "never", gen: gen}
		was, ok := s.actions[a]
		if ok && was.gen > gen {
			continue
		}
		if ok && was.hidden != now.hidden {
			turned = true
		}
		s.actions[a] = now
	}
	return turned
}

// showAll records actions as shown: a page listed whole because the
// decision service did not answer.
func (s *shownAnswers) showAll(actions []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actions == nil {
		s.actions = map[string]shownAnswer{}
	}
	for _, a := range actions {
		s.actions[a] = shownAnswer{hidden: false, gen: s.actions[a].gen}
	}
}

// retain forgets the actions not in keep (tools the upstream no longer
// has).
func (s *shownAnswers) retain(keep map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a := range s.actions {
		if _, ok := keep[a]; !ok {
			delete(s.actions, a)
		}
	}
}

// policyWatch is the running watcher of the policy in force (filter_tools
// "policy"): it asks /v1/actions/possible again about the tools shown every
// interval, and at once when nudged (a decision came under a policy hash
// the cached answers were not given under).
type policyWatch struct {
	nudge chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
	// checks and failures count the checks made and those that failed;
	// told the times clients were told the tools shown changed.
	checks, failures, told atomic.Int64
}

// startPolicyWatch starts the watcher; Close stops it. Its context is its
// own (not New's, which may only bound the start).
func (g *Gateway) startPolicyWatch(ctx context.Context, every time.Duration) {
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	w := &policyWatch{nudge: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	g.watch = w
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-w.nudge:
			}
			err := g.recheck(ctx)
			w.checks.Add(1)
			if err != nil && ctx.Err() == nil {
				w.failures.Add(1)
			}
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				// Nothing changes: what clients were shown stays, and no
				// failure makes the gateway show more.
				failing = true
				g.limited.Warn("policy watch: the decision service did not answer /v1/actions/possible; the tools shown stay as they are",
					"server", g.name, "error", err.Error())
			case failing:
				failing = false
				g.limited.Info("policy watch: the decision service answers /v1/actions/possible again", "server", g.name)
			}
		}
	}()
}

// nudgePolicyWatch asks the watcher to check now (without waiting; one
// pending nudge is enough).
func (g *Gateway) nudgePolicyWatch() {
	if g.watch == nil {
		return
	}
	select {
	case g.watch.nudge <- struct{}{}:
	default:
	}
}

// cancel tells the watcher to end; wait waits until it did. Close cancels,
// closes the upstream session, then waits: a check waiting for a Refresh
// stuck on the upstream is let go.
func (w *policyWatch) cancel() {
	if w != nil {
		w.stop()
	}
}

func (w *policyWatch) wait() {
	if w != nil {
		<-w.done
	}
}

// recheck asks /v1/actions/possible, bypassing the cache, about every tool
// the gateway shows, and tells connected clients when the answers hide
// other tools than before.
func (g *Gateway) recheck(ctx context.Context) error {
	g.mu.Lock()
	actions := make([]string, 0, len(g.tools))
	for name := range g.tools {
		actions = append(actions, Action(g.name, name))
	}
	g.mu.Unlock()
	if len(actions) == 0 {
		return nil
	}
	slices.Sort(actions)
	answers, gen, err := g.askPossible(ctx, actions)
	if err != nil {
		return err
	}
	g.shown.retain(answers)
	if g.shown.update(answers, gen) {
		g.toolsChanged("policy watch")
	}
	return nil
}

// toolsChanged sends notifications/tools/list_changed to every connected
// client. The Go SDK (v1.8.0) has no call that sends it by itself: its
// Server sends it only when AddTool or RemoveTools changes the tools
// (debounced by 10 ms, to every session: on the session for clients of
// the older protocol versions, to the subscriptions/listen streams that
// asked for it for the newer). Registering again, unchanged, one tool the
// gateway already serves is such a change that leaves the tools as they
// were: the SDK counts every AddTool as a change. Under the refresh lock,
// so that the tool is one Refresh has not removed.
func (g *Gateway) toolsChanged(why string) {
	g.refresh.Lock()
	defer g.refresh.Unlock()
	g.mu.Lock()
	var t *sdk.Tool
	for name, tool := range g.tools {
		if t == nil || name < t.Name {
			t = tool
		}
	}
	g.mu.Unlock()
	if t == nil {
		return // nothing served, nothing to hide or show
	}
	if err := g.addTool(t); err != nil {
		g.cfg.Logger.Error("clients not told that the tools shown changed", "server", g.name, "error", fmt.Sprint(err))
		return
	}
	if g.watch != nil {
		g.watch.told.Add(1)
	}
	g.cfg.Logger.Info("the policy in force hides other tools now; clients told (tools/list_changed)", "server", g.name,
		"policy", g.possibles.policyHash(), "by", why)
}
