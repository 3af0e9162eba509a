package monitor

import (
	"testing"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// A policy naming two logs; the monitor follows log A, then the URL serves
// log B's checkpoint (another origin, validly signed). That is not "the log
// is unreachable": the log followed was replaced, a failure.
func TestOriginChangeIsAFailure(t *testing.T) {
	f := newFixture(t)
	skeyB, vkeyB, err := ztlog.GenerateKey("example.com/other-log")
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := ztlog.ParseKey(skeyB)
	if err != nil {
		t.Fatal(err)
	}
	// Both logs in the policy.
	text := string(f.policy.Marshal())
	text = "log " + vkeyB + "\n" + text
	if f.policy, err = trustpolicy.Parse([]byte(text)); err != nil {
		t.Fatal(err)
	}
	entries := audittest.Slice(audittest.DefaultScenario().Entries(40))
	a := newLog(t, f.key)
	a.append(entries[:20])
	b := newLog(t, keyB)
	b.append(entries[:30])

	src := &source{}
	m := f.open(t)
	src.set(a.dir, nil)
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 || m.Checkpoint().Size != 20 {
		t.Fatalf("honest log: alerts %v", got)
	}
	src.set(b.dir, nil)
	poll(t, m, src)
	got := f.al.take()
	failed := false
	for _, x := range got {
		t.Logf("alert: kind=%s severity=%s msg=%s", x.Kind, x.Severity, x.Message)
		failed = failed || x.Severity == audit.Fail
	}
	if !failed || len(got) == 0 || got[0].Kind != KindInconsistent {
		t.Fatalf("the followed log's origin changed from %q to %q and no failure was alerted (alerts: %s)", origin, "example.com/other-log", kinds(got))
	}
}
