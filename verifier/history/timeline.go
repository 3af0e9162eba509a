package history

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Event is one verified entry of a timeline.
type Event struct {
	Index         uint64           `json:"index"`
	Time          string           `json:"time"`
	Kind          entry.Kind       `json:"kind"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	Actor         string           `json:"actor,omitempty"`
	Decision      entry.Effect     `json:"decision,omitempty"`
	Action        string           `json:"action,omitempty"`
	Resource      string           `json:"resource,omitempty"`
	Reasons       []string         `json:"reasons,omitempty"`
	Policy        *entry.PolicyRef `json:"policy,omitempty"`
	DecisionIndex *uint64          `json:"decision_index,omitempty"`
	Outcome       string           `json:"outcome,omitempty"`
	Op            string           `json:"op,omitempty"`
}

// PolicyInForce is a policy version that decided at least one of the
// history's decisions.
type PolicyInForce struct {
	entry.PolicyRef
	// First and Last are the log indices of the first and last decision
	// it made in this history; Decisions how many.
	First     uint64 `json:"first"`
	Last      uint64 `json:"last"`
	Decisions int    `json:"decisions"`
}

// Timeline is a verified history, as zt-audit history prints it.
type Timeline struct {
	Key       string          `json:"key"`
	Origin    string          `json:"origin"`
	Size      uint64          `json:"size"`
	LogRoot   string          `json:"log_root"`
	MapRoot   string          `json:"map_root"`
	Cosigners []string        `json:"cosigners"`
	Entries   int             `json:"entries"`
	Since     string          `json:"since,omitempty"`
	Events    []Event         `json:"events"`
	Policies  []PolicyInForce `json:"policies"`
	Verified  bool            `json:"verified"`
}

// NewTimeline turns a verified history into a timeline of the entries
// at or after since (zero: all). The proof covers every entry whatever
// since is; Entries counts them all.
func NewTimeline(h *History, since time.Time) *Timeline {
	t := &Timeline{Key: h.Key, Origin: h.Checkpoint.Origin, Size: h.Checkpoint.Size,
		LogRoot:   base64.StdEncoding.EncodeToString(h.Checkpoint.Hash),
		MapRoot:   base64.StdEncoding.EncodeToString(h.Index.MapRoot[:]),
		Cosigners: []string{}, Entries: len(h.Entries), Events: []Event{}, Policies: []PolicyInForce{}, Verified: true}
	for _, c := range h.Checkpoint.Cosignatures {
		t.Cosigners = append(t.Cosigners, c.Witness.Name)
	}
	if !since.IsZero() {
		t.Since = entry.FormatTime(since)
	}
	pol := map[entry.PolicyRef]int{}
	for _, v := range h.Entries {
		ev := event(v)
		if !since.IsZero() {
			if at, err := entry.ParseTime(ev.Time); err == nil && at.Before(since) {
				continue
			}
		}
		t.Events = append(t.Events, ev)
		if ev.Policy == nil {
			continue
		}
		k, ok := pol[*ev.Policy]
		if !ok {
			k = len(t.Policies)
			pol[*ev.Policy] = k
			t.Policies = append(t.Policies, PolicyInForce{PolicyRef: *ev.Policy, First: v.Index})
		}
		t.Policies[k].Last = v.Index
		t.Policies[k].Decisions++
	}
	return t
}

func event(v Verified) Event {
	ev := Event{Index: v.Index, Kind: v.Entry.EntryKind()}
	switch e := v.Entry.(type) {
	case *entry.Decision:
		ev.Time, ev.CorrelationID, ev.Actor = e.Time, e.CorrelationID, e.Actor
		ev.Decision, ev.Action, ev.Resource = e.Effect, e.Action, e.Resource
		p := e.Policy
		ev.Policy = &p
		for _, r := range e.Reasons {
			ev.Reasons = append(ev.Reasons, r.Code)
		}
	case *entry.Result:
		ev.Time, ev.CorrelationID, ev.Outcome = e.Time, e.CorrelationID, e.Outcome
		d := e.DecisionIndex
		ev.DecisionIndex = &d
	case *entry.Agent:
		ev.Time, ev.CorrelationID, ev.Op, ev.Actor = e.Time, e.CorrelationID, e.Op, e.ID
	case *entry.Policy:
		ev.Time = e.Time
	}
	return ev
}

// WriteText prints the timeline for a person.
func (t *Timeline) WriteText(w io.Writer) {
	fmt.Fprintf(w, "history   %s\n", t.Key)
	fmt.Fprintf(w, "log       %s, size %d, root %s\n", t.Origin, t.Size, t.LogRoot)
	if len(t.Cosigners) > 0 {
		fmt.Fprintf(w, "witnessed by %s\n", strings.Join(t.Cosigners, ", "))
	}
	fmt.Fprintf(w, "index     map root %s\n", t.MapRoot)
	shown := fmt.Sprintf("%d entries", t.Entries)
	if t.Since != "" {
		shown += fmt.Sprintf(", %d since %s", len(t.Events), t.Since)
	}
	fmt.Fprintf(w, "proven    complete: %s\n\n", shown)
	for _, e := range t.Events {
		fmt.Fprintf(w, "%7d  %-30s  %s\n", e.Index, e.Time, describe(e))
	}
	if len(t.Policies) > 0 {
		fmt.Fprintln(w, "\npolicy versions in force:")
		for _, p := range t.Policies {
			rev := ""
			if p.Revision != "" {
				rev = " " + p.Revision
			}
			fmt.Fprintf(w, "  %s (%s%s): %d decision(s), entries %d..%d\n", p.Hash, p.Engine, rev, p.Decisions, p.First, p.Last)
		}
	}
	fmt.Fprintf(w, "\nVERIFIED: the %d entries above are every entry of %s in the log at size %d\n", t.Entries, t.Key, t.Size)
}

func describe(e Event) string {
	switch e.Kind {
	case entry.KindDecision:
		s := fmt.Sprintf("decision %-5s %s %s", e.Decision, e.Action, e.Resource)
		if len(e.Reasons) > 0 {
			s += " (" + strings.Join(e.Reasons, ", ") + ")"
		}
		if e.Actor != "" {
			s += "  by " + e.Actor
		}
		return s + "  policy " + shortHash(e.Policy.Hash)
	case entry.KindResult:
		return fmt.Sprintf("result   %s for decision %d", e.Outcome, *e.DecisionIndex)
	case entry.KindAgent:
		return fmt.Sprintf("agent    %s %s", e.Op, e.Actor)
	}
	return string(e.Kind)
}

func shortHash(h string) string {
	if len(h) > 19 {
		return h[:19] + "…"
	}
	return h
}
