package mcp

import "testing"

// shownAnswers tells a turn (hidden <-> shown) of an action already shown,
// not a first answer or a repeated one, and passes over answers older than
// the ones recorded.
func TestShownAnswersTurns(t *testing.T) {
	const echo, del = "mcp.tool.s.echo", "mcp.tool.s.delete"
	var s shownAnswers
	for i, step := range []struct {
		name    string
		answers map[string]string
		gen     uint64
		turned  bool
	}{
		{"first answers", map[string]string{echo: "possible", del: "never"}, 1, false},
		{"the same again", map[string]string{echo: "possible", del: "never"}, 2, false},
		{"delete now possible", map[string]string{del: "possible"}, 3, true},
		{"an older answer (generation 2) is passed over", map[string]string{del: "never"}, 2, false},
		{"echo now never", map[string]string{echo: "never", del: "possible"}, 4, true},
		{"a new action", map[string]string{"mcp.tool.s.add": "never"}, 5, false},
	} {
		if got := s.update(step.answers, step.gen); got != step.turned {
			t.Fatalf("step %d (%s): turned %v, want %v", i, step.name, got, step.turned)
		}
	}
	// A page listed whole (the service did not answer): echo, hidden
	// before, was shown; the next answer hiding it is a turn.
	s.showAll([]string{echo})
	if !s.update(map[string]string{echo: "never"}, 6) {
		t.Fatal("echo listed whole, then answered never: no turn")
	}
	// Forgotten actions are first answers again.
	s.retain(map[string]string{echo: "never"})
	if s.update(map[string]string{del: "never"}, 7) {
		t.Fatal("an action forgotten by retain counted as a turn")
	}
}
