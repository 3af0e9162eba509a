package audit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
)

// StateVersion is the version of the saved auditor state.
const StateVersion = 1

// state is everything an Auditor carries from one Advance to the next.
type state struct {
	V       int                  `json:"v"`
	Origin  string               `json:"origin"`
	Entries uint64               `json:"entries"`
	Tree    treeState            `json:"tree"`
	Open    map[uint64]openAllow `json:"open"`
	Closed  []bitmapChunk        `json:"closed"`
	Evicted []bitmapChunk        `json:"evicted"`
	Revoked map[string]uint64    `json:"revoked"`
	LogTime int64                `json:"log_time"`
	Kinds   map[string]uint64    `json:"kinds"`
}

// MarshalState saves the auditor's position (tree, open allows, results
// seen, revocations) so that a later process can resume with
// RestoreAuditor. Findings are not saved: they have been reported.
func (a *Auditor) MarshalState() ([]byte, error) {
	c := a.comp
	s := state{
		V: StateVersion, Origin: a.origin, Entries: a.entries, Tree: a.tree.state(),
		Open: c.open, Closed: c.closed.save(), Evicted: c.evicted.save(),
		Revoked: c.revoked, LogTime: c.logTime, Kinds: c.kinds,
	}
	return json.Marshal(s)
}

// RestoreAuditor returns an auditor that continues from a saved state.
func RestoreAuditor(opts Options, saved []byte) (*Auditor, error) {
	var s state
	if err := json.Unmarshal(saved, &s); err != nil {
		return nil, fmt.Errorf("auditor state: %w", err)
	}
	if s.V != StateVersion {
		return nil, fmt.Errorf("auditor state version %d, this build reads %d", s.V, StateVersion)
	}
	a := NewAuditor(opts)
	if err := a.tree.restore(s.Tree); err != nil {
		return nil, fmt.Errorf("auditor state: %w", err)
	}
	closed, err := loadBitmap(s.Closed)
	if err != nil {
		return nil, fmt.Errorf("auditor state: %w", err)
	}
	evicted, err := loadBitmap(s.Evicted)
	if err != nil {
		return nil, fmt.Errorf("auditor state: %w", err)
	}
	c := a.comp
	c.closed, c.evicted, c.logTime = closed, evicted, s.LogTime
	if s.Open != nil {
		c.open = s.Open
	}
	if s.Revoked != nil {
		c.revoked = s.Revoked
	}
	if s.Kinds != nil {
		c.kinds = s.Kinds
	}
	// The queue holds the open allows in log order.
	c.queue = c.queue[:0]
	for i := range c.open {
		c.queue = append(c.queue, i)
	}
	sort.Slice(c.queue, func(i, j int) bool { return c.queue[i] < c.queue[j] })
	a.origin, a.entries = s.Origin, s.Entries
	return a, nil
}

// hash32 is a SHA-256 value, saved as base64.
type hash32 [32]byte

func (h hash32) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString(h[:])), nil
}

func (h *hash32) UnmarshalText(b []byte) error {
	d, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil || len(d) != 32 {
		return fmt.Errorf("not the base64 of 32 bytes")
	}
	copy(h[:], d)
	return nil
}
