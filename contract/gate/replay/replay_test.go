package replay

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/policysource"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

const examples = "../../../testdata/policies"

// forgedLog writes a log: the example OPA policy's entry, agent a1
// registered, then the decisions given; it returns the log, the policy's
// stored source, and the first decision's index.
func forgedLog(t testing.TB, decisions ...*entry.Decision) (client.FileFetcher, *policysource.Source, uint64) {
	t.Helper()
	p, err := pdp.Load(context.Background(), "opa", filepath.Join(examples, "opa"), "r1")
	if err != nil {
		t.Fatal(err)
	}
	v := p.Version()
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	leaves := [][]byte{
		audittest.MustMarshal(&entry.Policy{Time: entry.FormatTime(at), Hash: v.Hash, Engine: "opa", Revision: "r1", SourceDigest: v.SourceDigest, LoadedBy: "startup"}),
		audittest.MustMarshal(audittest.Register(at, audittest.Agent(1))),
	}
	for _, d := range decisions {
		d.Policy = v.Ref()
		leaves = append(leaves, audittest.MustMarshal(d))
	}
	skey, _, err := note.GenerateKey(nil, "example.com/replay")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := audittest.WriteLog(dir, s, audittest.Of(leaves)); err != nil {
		t.Fatal(err)
	}
	return client.FileFetcher{Root: dir}, v.Content, 2
}

func decision(n uint64, actor, action string, effect entry.Effect, reasons ...entry.Reason) *entry.Decision {
	d := audittest.Allow(time.Date(2026, 11, 21, 10, 0, 1, 0, time.UTC), n, actor)
	d.Action, d.Effect, d.Reasons = action, effect, reasons
	if effect == entry.Deny {
		d.Receipt = nil
	}
	return d
}

var (
	allowed   = entry.Reason{Code: "policy.allow", Message: "allowed by the example policy"}
	forbidden = entry.Reason{Code: "action.forbidden", Message: "this action is never allowed"}
)

// serve is a Fetch that serves src's stored document.
func serve(src *policysource.Source) Fetch {
	return func(context.Context, string, string) ([]byte, error) { return src.Marshal() }
}

func replayAll(t *testing.T, log client.FileFetcher, r *Replayer) ([]*Result, error) {
	t.Helper()
	var out []*Result
	_, err := r.Run(context.Background(), log, 0, nil, func(res *Result) error { out = append(out, res); return nil })
	return out, err
}

func TestReplayVerdicts(t *testing.T) {
	log, src, first := forgedLog(t,
		decision(0, audittest.Agent(1), "demo.echo", entry.Allow, allowed),                                               // as decided
		decision(1, audittest.Agent(1), "aws.ec2.terminate_instances", entry.Deny, forbidden),                            // as decided
		decision(2, audittest.Agent(1), "demo.echo", entry.Deny, forbidden),                                              // effect altered
		decision(3, audittest.Agent(1), "aws.ec2.terminate_instances", entry.Allow, allowed),                             // effect altered
		decision(4, audittest.Agent(2), "demo.echo", entry.Deny, entry.Reason{Code: "agent.unregistered", Message: "x"}), // the gate's
		decision(5, audittest.Agent(2), "demo.echo", entry.Allow, allowed),                                               // allow for an unregistered agent
	)
	results, err := replayAll(t, log, New(serve(src), nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{Same, Same, Different, Different, Gate, Different}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d", len(results), len(want))
	}
	for i, res := range results {
		if res.Index != first+uint64(i) {
			t.Errorf("result %d: index %d, want %d", i, res.Index, first+uint64(i))
		}
		if res.Verdict != want[i] {
			t.Errorf("decision %d: verdict %s, want %s (differences %q)", res.Index, res.Verdict, want[i], res.Differences)
		}
	}
	if d := results[2].Differences; len(d) == 0 || !strings.Contains(d[0], "effect: committed deny, replayed allow") {
		t.Errorf("altered effect reported as %q, want it to name both effects", d)
	}
	if !strings.Contains(results[0].Saw, "arguments digest and the guardrail findings") {
		t.Errorf("a result does not say what the policy saw: %q", results[0].Saw)
	}
}

// TestReplayFindings: the committed guardrail findings are what the
// policy sees again.
func TestReplayFindings(t *testing.T) {
	d := decision(0, audittest.Agent(1), "demo.echo", entry.Deny, entry.Reason{Code: "guardrail.finding", Message: "the arguments contain sensitive data (see findings)"})
	d.Findings = []entry.Finding{{Type: "email", Arg: "body", Offset: 1, Length: 5}}
	log, src, _ := forgedLog(t, d)
	results, err := replayAll(t, log, New(serve(src), nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	if results[0].Verdict != Same {
		t.Errorf("verdict %s, want same: %q", results[0].Verdict, results[0].Differences)
	}
}

// TestReplayRefusesAnotherSource: a source whose digest is not the one
// the policy entry commits is refused, naming both digests, whether the
// auditor gave it or the server served it.
func TestReplayRefusesAnotherSource(t *testing.T) {
	log, src, _ := forgedLog(t, decision(0, audittest.Agent(1), "demo.echo", entry.Allow, allowed))
	tampered := &policysource.Source{Engine: "opa", Files: map[string][]byte{}}
	for p, b := range src.Files {
		tampered.Files[p] = b
	}
	tampered.Files["data.json"] = []byte(strings.Replace(string(src.Files["data.json"]), "aws.ec2.terminate_instances", "nothing", 1))
	for name, r := range map[string]*Replayer{"given": New(nil, tampered), "served": New(serve(tampered), nil)} {
		_, err := replayAll(t, log, r)
		if !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: error %v, want ErrPolicy", name, err)
			continue
		}
		for _, digest := range []string{tampered.Digest(), src.Digest()} {
			if !strings.Contains(err.Error(), digest) {
				t.Errorf("%s: error %q does not name %s", name, err, digest)
			}
		}
	}
}

// TestReplayOneIndex: Run up to an index replays that decision only.
func TestReplayOneIndex(t *testing.T) {
	log, src, first := forgedLog(t,
		decision(0, audittest.Agent(1), "demo.echo", entry.Allow, allowed),
		decision(1, audittest.Agent(1), "demo.echo", entry.Deny, forbidden))
	var got []*Result
	target := first + 1
	sum, err := New(serve(src), nil).Run(context.Background(), log, target+1, func(i uint64) bool { return i == target },
		func(r *Result) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Decisions != 1 {
		t.Fatalf("%d decisions replayed, want 1", sum.Decisions)
	}
	if got[0].Index != target {
		t.Errorf("replayed index %d, want %d", got[0].Index, target)
	}
	if got[0].Verdict != Different {
		t.Errorf("verdict %s, want different", got[0].Verdict)
	}
}

// BenchmarkReplayLog replays a log of 2,000 decisions (allows and denies
// of a registered agent) from its directory, reading included.
func BenchmarkReplayLog(b *testing.B) {
	var ds []*entry.Decision
	for i := uint64(0); i < 2000; i++ {
		if i%2 == 0 {
			ds = append(ds, decision(i, audittest.Agent(1), "demo.echo", entry.Allow, allowed))
		} else {
			ds = append(ds, decision(i, audittest.Agent(1), "aws.ec2.terminate_instances", entry.Deny, forbidden))
		}
	}
	log, src, _ := forgedLog(b, ds...)
	b.ResetTimer()
	var sum *Summary
	for b.Loop() {
		var err error
		sum, err = New(serve(src), nil).Run(context.Background(), log, 0, nil, func(*Result) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if sum.Same != 2000 {
			b.Fatalf("%d same of %d", sum.Same, sum.Decisions)
		}
	}
	b.ReportMetric(float64(sum.Decisions)*float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// TestUnstoredPolicy: a policy whose source cannot be fetched (a log from
// before sources were stored) stops a replay, or with KeepGoing makes each
// of its decisions Unreplayable, saying why.
func TestUnstoredPolicy(t *testing.T) {
	log, _, _ := forgedLog(t,
		decision(0, audittest.Agent(1), "demo.echo", entry.Allow, allowed),
		decision(1, audittest.Agent(1), "demo.echo", entry.Allow, allowed))
	missing := func(context.Context, string, string) ([]byte, error) { return nil, errors.New("404 policy_not_stored") }
	if _, err := replayAll(t, log, New(missing, nil)); !errors.Is(err, ErrPolicy) {
		t.Errorf("without KeepGoing: error %v, want ErrPolicy", err)
	}
	r := New(missing, nil)
	r.KeepGoing = true
	results, err := replayAll(t, log, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for _, res := range results {
		if res.Verdict != Unreplayable {
			t.Errorf("decision %d: verdict %s, want unreplayable", res.Index, res.Verdict)
		}
		if !strings.Contains(res.Error, "404 policy_not_stored") {
			t.Errorf("decision %d: error %q does not say why", res.Index, res.Error)
		}
	}
}
