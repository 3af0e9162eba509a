package monitor

import (
	"testing"
	"time"

	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// Results for allows that already left the open set ("late" results) are
// linked after each Advance, at most MaxLate of them. One beyond that is
// not checked, and the monitor (which never calls Finish, where the audit
// summarizes the limit) must say so when it happens: here it is a result
// linking to the wrong action.
func TestMonitorAlertsLateResultsItCannotCheck(t *testing.T) {
	f := newFixture(t)
	t0 := audittest.DefaultScenario().Start
	a0 := audittest.Allow(t0, 1, audittest.Agent(1))
	a1 := audittest.Allow(t0, 2, audittest.Agent(1))
	l0, l1 := audittest.MustMarshal(a0), audittest.MustMarshal(a1)
	later := t0.Add(2 * time.Hour)
	r0 := audittest.ResultFor(later, 0, l0, a0)
	r1 := audittest.ResultFor(later, 1, l1, a1)
	r1.ActionDigest = audittest.ActionDigest(99) // links to the allow at 1, for another action
	entries := [][]byte{l0, l1, audittest.MustMarshal(audittest.Deny(later, 3, audittest.Agent(2))), audittest.MustMarshal(r0), audittest.MustMarshal(r1)}

	lg := newLog(t, f.key)
	lg.append(entries)
	src := &source{}
	src.set(lg.dir, nil)
	f.now = later.Add(time.Minute)
	m, err := Open(f.state, f.policy, Options{Now: func() time.Time { return f.now }, Alert: f.al.add, Audit: audit.Options{Window: time.Hour, MaxLate: 1}})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, m, src)
	got := f.al.take()
	failed := false
	for _, a := range got {
		t.Logf("alert: %s %s %s", a.Kind, a.Severity, a.Message)
		failed = failed || a.Severity == audit.Fail
	}
	if !failed {
		t.Fatalf("the result at entry 4 names another action than its allow at entry 1, and it was never checked (late results beyond MaxLate dropped), yet no failure was alerted: %s", kinds(got))
	}
}
