package mcp

import (
	"context"
	"fmt"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/contract/api"
)

// FilterPolicy is the mapping's filter_tools value that hides, from
// tools/list, the tools the policy in force can never allow for the
// gateway's agent (POST /v1/actions/possible answered "never").
const FilterPolicy = "policy"

// PossibleTTL is how long the answers of /v1/actions/possible are used
// without asking again, when no decision showed a different policy hash.
const PossibleTTL = time.Minute

// possibleCache holds the answers of /v1/actions/possible, valid for one
// policy hash.
type possibleCache struct {
	mu      sync.Mutex
	hash    string            // the policy hash the answers were given under
	at      time.Time         // when they were last asked
	answers map[string]string // action -> "never" | "possible"
	seen    string            // the policy hash of the latest decision
	gen     uint64            // counts the stores: the answers' age
}

// notePolicy records the policy hash a decision was made under: answers
// given under another hash are stale. It reports whether hash is news: the
// cache holds answers given under another hash, and no decision showed
// this one before.
func (c *possibleCache) notePolicy(hash string) bool {
	if hash == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	news := c.hash != "" && hash != c.hash && hash != c.seen
	c.seen = hash
	return news
}

// policyHash is the policy hash the cached answers were given under.
func (c *possibleCache) policyHash() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hash
}

// lookup returns the cached answers for actions, and their generation,
// when every one is cached under the policy hash in force as far as the
// gateway knows, and fresh.
func (c *possibleCache) lookup(actions []string, now time.Time) (map[string]string, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hash == "" || (c.seen != "" && c.seen != c.hash) || now.Sub(c.at) >= PossibleTTL {
		return nil, 0, false
	}
	out := make(map[string]string, len(actions))
	for _, a := range actions {
		v, ok := c.answers[a]
		if !ok {
			return nil, 0, false
		}
		out[a] = v
	}
	return out, c.gen, true
}

// store caches answers given under hash and returns their generation.
func (c *possibleCache) store(hash string, answers map[string]string, now time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hash != c.hash {
		c.answers = map[string]string{}
	}
	c.hash, c.at = hash, now
	for a, v := range answers {
		c.answers[a] = v
	}
	c.gen++
	return c.gen
}

// possible answers from the cache, or asks the decision service; it
// returns the answers' generation too (possibleCache.store).
func (g *Gateway) possible(ctx context.Context, actions []string) (map[string]string, uint64, error) {
	if got, gen, ok := g.possibles.lookup(actions, time.Now()); ok {
		return got, gen, nil
	}
	return g.askPossible(ctx, actions)
}

// askPossible asks the decision service about actions (in chunks of at
// most api.MaxPossibleActions) and caches the answers. All answers must
// come under one policy hash. One question at a time, so that answers are
// cached in the order they were given.
func (g *Gateway) askPossible(ctx context.Context, actions []string) (map[string]string, uint64, error) {
	g.asking.Lock()
	defer g.asking.Unlock()
	out := make(map[string]string, len(actions))
	hash := ""
	for start := 0; start < len(actions); start += api.MaxPossibleActions {
		chunk := actions[start:min(start+api.MaxPossibleActions, len(actions))]
		resp, err := g.cfg.Client.Possible(ctx, chunk)
		if err != nil {
			return nil, 0, err
		}
		if hash != "" && resp.Policy.Hash != hash {
			return nil, 0, fmt.Errorf("the policy changed while asking (%s, then %s)", hash, resp.Policy.Hash)
		}
		hash = resp.Policy.Hash
		for _, a := range resp.Answers {
			out[a.Action] = a.Answer
		}
	}
	gen := g.possibles.store(hash, out, time.Now())
	g.possibles.notePolicy(hash)
	return out, gen, nil
}

// filterList removes from a tools/list page the tools the policy can never
// allow for the gateway's agent. Hiding is presentation only: a hidden
// tool stays callable, and its calls are decided (and denied, and
// committed) like any other. When the decision service cannot answer, the
// page is returned whole and the failure logged: showing a tool never
// allows it.
func (g *Gateway) filterList(ctx context.Context, res *sdk.ListToolsResult) *sdk.ListToolsResult {
	if res == nil || len(res.Tools) == 0 {
		return res
	}
	actions := make([]string, len(res.Tools))
	for i, t := range res.Tools {
		actions[i] = Action(g.name, t.Name)
	}
	answers, gen, err := g.possible(ctx, actions)
	if err != nil {
		g.limited.Warn("tools/list not filtered by policy: the decision service did not answer /v1/actions/possible; every tool is shown (calls are still decided)",
			"server", g.name, "error", err.Error())
		// What this client now shows: once the service answers again, a
		// tool found hidden is a change the clients are told about.
		g.shown.showAll(actions)
		return res
	}
	// Fresh answers may hide other tools than the other clients were
	// shown (the watcher had not asked yet): tell them.
	if g.shown.update(answers, gen) {
		g.toolsChanged("tools/list")
	}
	kept := make([]*sdk.Tool, 0, len(res.Tools))
	hidden := 0
	for i, t := range res.Tools {
		if answers[actions[i]] == "never" {
			hidden++
			continue
		}
		kept = append(kept, t)
	}
	if hidden > 0 {
		g.cfg.Logger.Info("tools/list filtered by policy", "server", g.name, "shown", len(kept), "hidden_never_allowed", hidden)
	}
	out := *res
	out.Tools = kept
	return &out
}
