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
}

// notePolicy records the policy hash a decision was made under: answers
// given under another hash are stale.
func (c *possibleCache) notePolicy(hash string) {
	if hash == "" {
		return
	}
	c.mu.Lock()
	c.seen = hash
	c.mu.Unlock()
}

// lookup returns the cached answers for actions when every one is cached
// under the policy hash in force as far as the gateway knows, and fresh.
func (c *possibleCache) lookup(actions []string, now time.Time) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hash == "" || (c.seen != "" && c.seen != c.hash) || now.Sub(c.at) >= PossibleTTL {
		return nil, false
	}
	out := make(map[string]string, len(actions))
	for _, a := range actions {
		v, ok := c.answers[a]
		if !ok {
			return nil, false
		}
		out[a] = v
	}
	return out, true
}

func (c *possibleCache) store(hash string, answers map[string]string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hash != c.hash {
		c.answers = map[string]string{}
	}
	c.hash, c.at = hash, now
	for a, v := range answers {
		c.answers[a] = v
	}
}

// possible asks the decision service about actions (in chunks of at most
// api.MaxPossibleActions), or answers from the cache. All answers must come
// under one policy hash.
func (g *Gateway) possible(ctx context.Context, actions []string) (map[string]string, error) {
	if got, ok := g.possibles.lookup(actions, time.Now()); ok {
		return got, nil
	}
	out := make(map[string]string, len(actions))
	hash := ""
	for start := 0; start < len(actions); start += api.MaxPossibleActions {
		chunk := actions[start:min(start+api.MaxPossibleActions, len(actions))]
		resp, err := g.cfg.Client.Possible(ctx, chunk)
		if err != nil {
			return nil, err
		}
		if hash != "" && resp.Policy.Hash != hash {
			return nil, fmt.Errorf("the policy changed while asking (%s, then %s)", hash, resp.Policy.Hash)
		}
		hash = resp.Policy.Hash
		for _, a := range resp.Answers {
			out[a.Action] = a.Answer
		}
	}
	g.possibles.store(hash, out, time.Now())
	g.possibles.notePolicy(hash)
	return out, nil
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
	answers, err := g.possible(ctx, actions)
	if err != nil {
		g.cfg.Logger.Warn("tools/list not filtered by policy: the decision service did not answer /v1/actions/possible; every tool is shown (calls are still decided)",
			"server", g.name, "error", err.Error())
		return res
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
