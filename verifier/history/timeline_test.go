package history

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTimeline: the events of agent A's verified history, the policy
// version in force, and --since leaving out earlier entries while the
// count of proven entries stays whole.
func TestTimeline(t *testing.T) {
	l := vectorLog(t)
	h, err := Verify(encode(t, l.answer(t, AgentKey(agentA))), AgentKey(agentA), l.policy, noTime)
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTimeline(h, time.Time{})
	kinds := []string{}
	for _, e := range tl.Events {
		kinds = append(kinds, string(e.Kind))
	}
	if got, want := strings.Join(kinds, ","), "agent,decision,result,decision"; got != want {
		t.Errorf("kinds %s, want %s", got, want)
	}
	if len(tl.Policies) != 1 {
		t.Fatalf("%d policy versions, want 1", len(tl.Policies))
	}
	if p := tl.Policies[0]; p.Decisions != 2 || p.First != 2 || p.Last != 6 {
		t.Errorf("policy in force: %+v, want 2 decisions from entry 2 to 6", p)
	}
	if d := tl.Events[2].DecisionIndex; d == nil || *d != 2 {
		t.Errorf("the result's decision index: %v, want 2", d)
	}

	since := NewTimeline(h, time.Date(2026, 11, 21, 10, 0, 5, 0, time.UTC))
	if len(since.Events) != 2 {
		t.Errorf("--since: %d events, want 2 (the result and the last decision)", len(since.Events))
	}
	if since.Entries != 4 {
		t.Errorf("--since: %d entries proven, want all 4", since.Entries)
	}
	var out bytes.Buffer
	since.WriteText(&out)
	if !strings.Contains(out.String(), "proven    complete: 4 entries, 2 since 2026-11-21T10:00:05Z") {
		t.Errorf("text timeline does not say what was proven and shown:\n%s", out.String())
	}
}
