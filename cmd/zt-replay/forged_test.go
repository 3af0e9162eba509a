package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// TestForgedEffectIsAMismatch: in a log directory whose decision at index
// 3 was committed as an allow although the committed policy forbids it,
// `zt-replay decision` reports the mismatch (exit 1) and `zt-replay log`
// counts it; the honest decision at index 2 replays the same.
func TestForgedEffectIsAMismatch(t *testing.T) {
	dir := forgedLog(t)
	if out, stderr, code := run(t, "decision", "--log", dir, "--index", "2"); code != 0 {
		t.Errorf("honest decision: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code := run(t, "decision", "--log", dir, "--index", "3")
	if code != 1 {
		t.Errorf("forged decision: exit %d, want 1\n%s%s", code, out, stderr)
	}
	t.Logf("zt-replay decision --index 3:\n%s%s", out, stderr)
	if !strings.Contains(out, "effect: committed allow, replayed deny") {
		t.Errorf("forged decision: output does not name both effects:\n%s", out)
	}
	out, stderr, code = run(t, "log", "--log", dir)
	if code != 1 {
		t.Errorf("log: exit %d, want 1\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "different  1") {
		t.Errorf("log: does not count one differing decision:\n%s", out)
	}
	if _, stderr, code := run(t, "decision", "--log", dir, "--index", "1"); code != 2 || !strings.Contains(stderr, "entry 1 is not a decision") {
		t.Errorf("index of an agent entry: exit %d, %q; want 2 and a clear error", code, stderr)
	}
}

// forgedLog writes a log directory (with its policies/ store) whose decision
// at index 2 is honest and whose decision at index 3 was committed as an
// allow although the committed policy forbids it.
func forgedLog(t *testing.T) string {
	t.Helper()
	p, err := pdp.Load(context.Background(), "opa", "../../testdata/policies/opa", "r1")
	if err != nil {
		t.Fatal(err)
	}
	v := p.Version()
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	honest := audittest.Allow(at, 0, audittest.Agent(1))
	honest.Reasons = []entry.Reason{{Code: "policy.allow", Message: "allowed by the example policy"}}
	forged := audittest.Allow(at, 1, audittest.Agent(1))
	forged.Action = "aws.ec2.terminate_instances"
	forged.Reasons = honest.Reasons
	for _, d := range []*entry.Decision{honest, forged} {
		d.Policy = v.Ref()
	}
	leaves := [][]byte{
		audittest.MustMarshal(&entry.Policy{Time: entry.FormatTime(at), Hash: v.Hash, Engine: "opa", Revision: "r1", SourceDigest: v.SourceDigest, LoadedBy: "startup"}),
		audittest.MustMarshal(audittest.Register(at, audittest.Agent(1))),
		audittest.MustMarshal(honest),
		audittest.MustMarshal(forged),
	}
	skey, _, _ := note.GenerateKey(nil, "example.com/forged")
	signer, _ := note.NewSigner(skey)
	dir := t.TempDir()
	if _, err := audittest.WriteLog(dir, signer, audittest.Of(leaves)); err != nil {
		t.Fatal(err)
	}
	doc, err := v.Content.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "policies"), 0o755)
	os.WriteFile(filepath.Join(dir, "policies", strings.TrimPrefix(v.SourceDigest, "sha256:")+".json"), doc, 0o644)

	return dir
}
