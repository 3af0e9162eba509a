// Package agents is the agent registry: which SPIFFE IDs are registered
// agents, who owns them, which brokers they may hand work to, and their
// labels, and the aliases (actor names of the older ZT control plane) bound
// to each. The log is its source of truth: every change is committed as an
// `agent` entry before it takes effect, and on start the registry is rebuilt
// by replaying the log's agent entries in index order.
//
//	POST /v1/agents                    register or revoke (administrators)
//	GET  /v1/agents/{trust-domain}/{path}  a record (administrators, or the agent)
package agents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	ztlog "github.com/zt-infra/ztlog/log"
)

// Status values of a record.
const (
	Registered   = "registered"
	Revoked      = "revoked"
	Unregistered = "unregistered" // never registered (no record)
)

// Registry is the agent registry. Safe for concurrent use.
type Registry struct {
	log *ztlog.Log

	change sync.Mutex // serializes commits, so the log order is the apply order (apply also skips a change older than the agent's record)
	mu     sync.RWMutex
	agents map[string]api.Agent
	// aliases maps an alias to the registered agents whose records list
	// it. Commit keeps it to one; two can only come from changes that
	// raced (an abandoned Commit sequenced late), and then the alias
	// resolves for neither.
	aliases map[string]map[string]bool
}

// Rebuild reads every agent entry in the log, in index order, and returns
// the registry they describe. It first waits (bounded by ctx) until the
// published checkpoint covers every integrated entry, so that changes
// committed just before a crash are not missed.
func Rebuild(ctx context.Context, l *ztlog.Log) (*Registry, error) {
	r := New(l)
	if err := l.Replay(ctx, r.Replay); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	return r, nil
}

// New returns an empty registry over l; Replay fills it from the log's
// entries (Rebuild does both).
func New(l *ztlog.Log) *Registry {
	return &Registry{log: l, agents: map[string]api.Agent{}, aliases: map[string]map[string]bool{}}
}

// Replay applies the log entry at index if it is an agent entry. Entries
// must come in index order.
func (r *Registry) Replay(index uint64, leaf []byte) error {
	if !isAgentEntry(leaf) {
		return nil
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		return fmt.Errorf("agents: entry %d looks like an agent entry but does not parse: %w", index, err)
	}
	if a, ok := e.(*entry.Agent); ok {
		r.apply(a, index)
	}
	return nil
}

// isAgentEntry is a cheap filter before the full parse (most entries are
// decisions); a false positive is parsed and skipped.
func isAgentEntry(leaf []byte) bool { return bytes.Contains(leaf, []byte(`"kind":"agent"`)) }

func (r *Registry) apply(a *entry.Agent, index uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.agents[a.ID]; ok && prev.Index > index {
		// A change sequenced before one already applied (an abandoned
		// Commit whose entry was sequenced later): the newer one stands.
		return
	}
	rec := api.Agent{ID: a.ID, Updated: a.Time, By: a.By, Index: index}
	prev := r.agents[a.ID]
	if a.Op == entry.AgentRevoke {
		rec.Owner, rec.Brokers, rec.Labels, rec.Aliases = prev.Owner, prev.Brokers, prev.Labels, prev.Aliases
		rec.Status = Revoked
	} else {
		rec.Status = Registered
		rec.Owner, rec.Brokers, rec.Labels, rec.Aliases = a.Owner, a.Brokers, a.Labels, a.Aliases
	}
	// The agent's old aliases are released; a registered agent holds its
	// new ones (a revoked one holds none: they resolve for nobody and may
	// be bound to another agent).
	if prev.Status == Registered {
		for _, al := range prev.Aliases {
			delete(r.aliases[al], a.ID)
			if len(r.aliases[al]) == 0 {
				delete(r.aliases, al)
			}
		}
	}
	if rec.Status == Registered {
		for _, al := range rec.Aliases {
			if r.aliases[al] == nil {
				r.aliases[al] = map[string]bool{}
			}
			r.aliases[al][a.ID] = true
		}
	}
	r.agents[a.ID] = rec
}

// AliasOwner returns the registered agent that holds alias; ok is false
// when none does (or, after racing changes, more than one: then the alias
// resolves for nobody).
func (r *Registry) AliasOwner(alias string) (id string, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	holders := r.aliases[alias]
	if len(holders) != 1 {
		return "", false
	}
	for id := range holders {
		return id, true
	}
	return "", false
}

// Lookup returns the record of id; ok is false if it was never registered.
func (r *Registry) Lookup(id string) (api.Agent, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.agents[id]
	return a, ok
}

// Len is the number of records (registered and revoked).
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.agents)
}

// IDs lists the registered (not revoked) agents, sorted.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for id, a := range r.agents {
		if a.Status == Registered {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// All lists every record (registered and revoked), sorted by ID.
func (r *Registry) All() []api.Agent {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]api.Agent, 0, len(r.agents))
	for _, a := range r.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ErrUnknownAgent: a revoke of an ID that was never registered.
var ErrUnknownAgent = errors.New("agents: no such agent")

// AliasTakenError: a register names an alias that another registered agent
// holds. Nothing was committed.
type AliasTakenError struct {
	// Field is the request field, "aliases[i]".
	Field string
	Alias string
	// Holder is the SPIFFE ID of the agent that holds it.
	Holder string
}

func (e *AliasTakenError) Error() string {
	return fmt.Sprintf("agents: %s: the alias %q is held by %s; an alias names one agent (revoke it, or register %s without it, first)",
		e.Field, e.Alias, e.Holder, e.Holder)
}

// Commit appends the change to the log and, once it is durably sequenced,
// applies it. It returns the record, the entry's index and leaf.
func (r *Registry) Commit(ctx context.Context, req *api.AgentRequest, by, correlationID string, now time.Time) (api.Agent, uint64, []byte, error) {
	r.change.Lock()
	defer r.change.Unlock()
	if req.Op == entry.AgentRevoke {
		if _, ok := r.Lookup(req.ID); !ok {
			return api.Agent{}, 0, nil, fmt.Errorf("%w: %s was never registered", ErrUnknownAgent, req.ID)
		}
	}
	if err := r.aliasesFree(req); err != nil {
		return api.Agent{}, 0, nil, err
	}
	e := &entry.Agent{Time: entry.FormatTime(now), CorrelationID: correlationID, Op: req.Op, ID: req.ID,
		Owner: req.Owner, Brokers: req.Brokers, Labels: req.Labels, Aliases: req.Aliases, By: by}
	leaf, err := entry.Marshal(e)
	if err != nil {
		return api.Agent{}, 0, nil, err
	}
	// An append whose ctx ends may still be sequenced: it is applied
	// then, so the registry never falls behind the log (a revoke in the
	// log while the gate still allows).
	idx, err := r.log.AppendThen(ctx, leaf, func(idx uint64, err error) {
		if err == nil {
			r.apply(e, idx)
		}
	})
	if err != nil {
		return api.Agent{}, 0, nil, err
	}
	r.apply(e, idx)
	a, _ := r.Lookup(req.ID)
	return a, idx, leaf, nil
}

// aliasesFree refuses a register whose aliases another registered agent
// holds.
func (r *Registry) aliasesFree(req *api.AgentRequest) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, al := range req.Aliases {
		for holder := range r.aliases[al] {
			if holder != req.ID {
				return &AliasTakenError{Field: fmt.Sprintf("aliases[%d]", i), Alias: al, Holder: holder}
			}
		}
	}
	return nil
}
