package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

func init() { klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

const origin = "example.com/audit-test"

type testKey struct {
	signer note.Signer
	policy *trustpolicy.Policy
	skey   string
	vkey   string
}

func newKey(t testing.TB) testKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := trustpolicy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, p, skey, vkey}
}

// writeLog writes entries with the fast writer and returns the directory.
func writeLog(t testing.TB, k testKey, entries [][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := audittest.WriteLog(dir, k.signer, audittest.Of(entries)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func run(t testing.TB, dir string, k testKey, opts Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), client.FileFetcher{Root: dir}, k.policy, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func statuses(r *Report) string {
	var s []string
	for _, c := range r.Checks {
		s = append(s, c.ID+"="+c.Status())
	}
	return strings.Join(s, " ")
}

func expectValid(t *testing.T, r *Report) {
	t.Helper()
	if !r.Valid {
		t.Fatalf("audit failed: %+v\n%s", r.First, statuses(r))
	}
}

// expectFailure checks that the first failure (and the check's examples)
// name the check and index.
func expectFailure(t *testing.T, r *Report, check string, index int64, phrase string) {
	t.Helper()
	if r.Valid {
		t.Fatalf("audit passed; want %s to fail", check)
	}
	c := r.Check(check)
	if c == nil || c.Failed == 0 {
		t.Fatalf("check %s did not fail: %s; first failure %+v", check, statuses(r), r.First)
	}
	for _, f := range c.Examples {
		if f.Severity == Fail && (index < 0 && f.Index == nil || f.Index != nil && int64(*f.Index) == index) && strings.Contains(f.Message, phrase) {
			return
		}
	}
	t.Fatalf("no %s failure at index %d containing %q: %+v", check, index, phrase, c.Examples)
}

// Past one level-1 tile and with a partial level-2 tile, in one pass and
// in three steps from the log's own earlier checkpoints (Merkle replay).
func TestAuditMultiLevel(t *testing.T) {
	k := newKey(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(70_000))
	dir := writeLog(t, k, entries)
	whole := run(t, dir, k, Options{MerkleOnly: true})
	expectValid(t, whole)
	if c := whole.Check(CheckTiles); c.Checked != 274+1+1+1 { // 273 full + 1 partial level 0; level 1 full + partial; level 2 partial
		t.Errorf("tiles checked %d", c.Checked)
	}
	r := advanceInSteps(t, k, entries, []int{1000, 65_600, 70_000}, Options{MerkleOnly: true})
	// To 1000: level-0 tiles 0-2 and partial 3, partial level 1 (5).
	// To 65600: level-0 tiles 3-255, level-1 tile 0, partial level 0 and 2 (256).
	// To 70000: level-0 tiles 256-272, partial levels 0, 1 and 2 (20).
	if r.Check(CheckTiles).Checked != 5+256+20 {
		t.Errorf("incremental tiles checked %d", r.Check(CheckTiles).Checked)
	}
}

// Entry checks carry over between steps that end inside a bundle.
func TestAuditIncremental(t *testing.T) {
	k := newKey(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(2000))
	whole := run(t, writeLog(t, k, entries), k, Options{})
	expectValid(t, whole)
	r := advanceInSteps(t, k, entries, []int{100, 101, 700, 2000}, Options{})
	if r.Entries != 2000 || r.Check(CheckResultLink).Checked != whole.Check(CheckResultLink).Checked || r.Open != whole.Open {
		t.Fatalf("incremental: %d entries, %d results, %d open; whole: %d results, %d open", r.Entries, r.Check(CheckResultLink).Checked, r.Open, whole.Check(CheckResultLink).Checked, whole.Open)
	}
}

func advanceInSteps(t *testing.T, k testKey, entries [][]byte, steps []int, opts Options) *Report {
	return advance(t, k, entries, steps, opts, false)
}

// advance audits the log in steps; with restart, each step is made by a
// new auditor restored from the previous one's saved state.
func advance(t *testing.T, k testKey, entries [][]byte, steps []int, opts Options, restart bool) *Report {
	t.Helper()
	a := NewAuditor(opts)
	for _, n := range steps {
		if restart {
			saved, err := a.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			if a, err = RestoreAuditor(opts, saved); err != nil {
				t.Fatal(err)
			}
		}
		d := writeLog(t, k, entries[:n])
		raw, _ := os.ReadFile(filepath.Join(d, "checkpoint"))
		cp, err := a.VerifyCheckpoint(raw, k.policy)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Advance(context.Background(), client.FileFetcher{Root: d}, cp); err != nil {
			t.Fatalf("advance to %d: %v", n, err)
		}
	}
	a.Finish()
	r := a.Report(time.Second)
	expectValid(t, r)
	return r
}

// The saved state carries everything: a result whose allow was audited
// before a restart still links, and a second result is still caught.
func TestAuditStateRoundTrip(t *testing.T) {
	k := newKey(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(2000))
	whole := run(t, writeLog(t, k, entries), k, Options{})
	r := advance(t, k, entries, []int{100, 101, 700, 1500, 2000}, Options{}, true)
	// Check counters are per run (findings were reported); kinds and open
	// allows are state.
	if r.Entries != 2000 || r.Open != whole.Open || fmt.Sprint(r.Kinds) != fmt.Sprint(whole.Kinds) {
		t.Fatalf("restarted: %d entries, kinds %v, %d open; whole: kinds %v, %d open", r.Entries, r.Kinds, r.Open, whole.Kinds, whole.Open)
	}
	i, d := findAllow(t, entries, 5)
	again := append(entries[:2000:2000], audittest.MustMarshal(audittest.ResultFor(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), uint64(i), entries[i], d)))
	a := NewAuditor(Options{})
	for _, n := range []int{2000, 2001} {
		saved, _ := a.MarshalState()
		a, _ = RestoreAuditor(Options{}, saved)
		dir := writeLog(t, k, again[:n])
		raw, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
		cp, _ := a.VerifyCheckpoint(raw, k.policy)
		a.Advance(context.Background(), client.FileFetcher{Root: dir}, cp)
	}
	expectFailure(t, a.Report(0), CheckResultOnce, 2000, "second result")
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedTiles(t *testing.T) {
	k := newKey(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(66_000))
	for _, c := range []struct {
		name  string
		path  string
		at    int
		index int64
	}{
		{"level-0 tile", layout.TilePath(0, 3, 0), 32*17 + 5, 3 * 256},
		{"partial level-0 tile", layout.TilePath(0, 257, uint8(66_000%256)), 0, 257 * 256},
		{"level-1 tile", layout.TilePath(1, 0, 0), 32 * 200, 0},
		{"partial level-2 tile", layout.TilePath(2, 0, 1), 3, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeLog(t, k, entries)
			flipByte(t, filepath.Join(dir, c.path), c.at)
			r := run(t, dir, k, Options{MerkleOnly: true})
			expectFailure(t, r, CheckTiles, c.index, "tile "+c.path+" differs from the tree recomputed from the entries")
			if r.Check(CheckRoot).Status() != "pass" {
				t.Errorf("root %s: only a tile was altered", r.Check(CheckRoot).Status())
			}
		})
	}
}

func TestTamperedBundle(t *testing.T) {
	k := newKey(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(1000))
	dir := writeLog(t, k, entries)
	// Flip a byte inside the 10th entry of bundle 1 (its action digest).
	p := filepath.Join(dir, layout.EntriesPath(1, 0))
	b, _ := os.ReadFile(p)
	off := 0
	for range 10 {
		off += 2 + int(b[off])<<8 | int(b[off+1])
	}
	j := strings.Index(string(b[off:]), "sha256:")
	flipByte(t, p, off+j+10)
	r := run(t, dir, k, Options{})
	expectFailure(t, r, CheckRoot, -1, "the checkpoint says")
	expectFailure(t, r, CheckTiles, 256, "tile tile/0/001 differs")
	// Merkle-only replay catches it too.
	expectFailure(t, run(t, dir, k, Options{MerkleOnly: true}), CheckRoot, -1, "the checkpoint says")
}

func TestMissingAndMalformedBundles(t *testing.T) {
	k := newKey(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(1000))
	dir := writeLog(t, k, entries)
	os.Remove(filepath.Join(dir, layout.EntriesPath(2, 0)))
	expectFailure(t, run(t, dir, k, Options{}), CheckBundles, 512, "entry bundle tile/entries/002 is missing")

	dir = writeLog(t, k, entries)
	p := filepath.Join(dir, layout.EntriesPath(1, 0))
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-7], 0o644)
	expectFailure(t, run(t, dir, k, Options{}), CheckBundles, 256, "is malformed")

	dir = writeLog(t, k, entries)
	os.Remove(filepath.Join(dir, layout.TilePath(0, 0, 0)))
	expectFailure(t, run(t, dir, k, Options{}), CheckTiles, -1, "tile tile/0/000 is missing")
}

func marshal(e entry.Entry) []byte { return audittest.MustMarshal(e) }

// scenarioWith returns the default scenario's first n entries with extra
// entries appended, made by f from the log so far.
func scenarioWith(n uint64, f func(entries [][]byte, at func(int) time.Time) [][]byte) [][]byte {
	s := audittest.DefaultScenario()
	entries := audittest.Slice(s.Entries(n))
	at := func(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Step) }
	return append(entries, f(entries, at)...)
}

// findAllow returns the index and decision of the k-th allow in entries.
func findAllow(t *testing.T, entries [][]byte, k int) (int, *entry.Decision) {
	for i, b := range entries {
		e, _ := entry.Parse(b)
		if d, ok := e.(*entry.Decision); ok && d.Effect == entry.Allow {
			if k == 0 {
				return i, d
			}
			k--
		}
	}
	t.Fatal("not enough allows")
	return 0, nil
}

func TestCompleteness(t *testing.T) {
	k := newKey(t)
	base := uint64(300)
	for _, c := range []struct {
		name    string
		extra   func(t *testing.T, entries [][]byte, at func(int) time.Time) [][]byte
		check   string
		index   int64
		phrase  string
		opts    Options
		warnOf  string
		warn    string
		isValid bool
	}{
		{name: "result without allow (links to a deny)", check: CheckResultLink, index: int64(base), phrase: "which is not an allow decision",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				for i, b := range es {
					e, _ := entry.Parse(b)
					if d, ok := e.(*entry.Decision); ok && d.Effect == entry.Deny {
						fake := audittest.Allow(at(i), 999, d.Actor) // same shape, but the entry is a deny
						fake.ActionDigest = d.ActionDigest
						return [][]byte{marshal(audittest.ResultFor(at(len(es)), uint64(i), b, fake))}
					}
				}
				t.Fatal("no deny")
				return nil
			}},
		{name: "result linking forward", check: CheckResultLink, index: int64(base), phrase: "which is not before it",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				i, d := findAllow(t, es, 0)
				return [][]byte{marshal(audittest.ResultFor(at(len(es)), uint64(len(es)+5), es[i], d))}
			}},
		{name: "second result", check: CheckResultOnce, index: int64(base), phrase: "second result for the allow at entry",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				i, d := findAllow(t, es, 3)
				return [][]byte{marshal(audittest.ResultFor(at(len(es)), uint64(i), es[i], d))}
			}},
		{name: "action digest differs", check: CheckResultLink, index: int64(base) + 1, phrase: "has action digest",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				allow := marshal(d)
				r := audittest.ResultFor(at(len(es)+1), uint64(len(es)), allow, d)
				r.ActionDigest = entry.Digest([]byte("something else"))
				return [][]byte{allow, marshal(r)}
			}},
		{name: "leaf hash differs", check: CheckResultLink, index: int64(base) + 1, phrase: "names decision leaf hash",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				return [][]byte{marshal(d), marshal(audittest.ResultFor(at(len(es)+1), uint64(len(es)), []byte("other"), d))}
			}},
		{name: "result from another broker", check: CheckResultLink, index: int64(base) + 1, phrase: "is from broker",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				allow := marshal(d)
				r := audittest.ResultFor(at(len(es)+1), uint64(len(es)), allow, d)
				r.Broker = "spiffe://dev.ztlog.local/broker/other"
				return [][]byte{allow, marshal(r)}
			}},
		{name: "result older than its allow", check: CheckResultLink, index: int64(base) + 1, phrase: "is older than its allow",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				allow := marshal(d)
				return [][]byte{allow, marshal(audittest.ResultFor(at(len(es)-100), uint64(len(es)), allow, d))}
			}},
		{name: "allow after revocation", check: CheckRevocation, index: int64(base) + 1, phrase: "revoked at entry 300",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				a := audittest.Agent(2)
				return [][]byte{
					marshal(audittest.Revoke(at(len(es)), a)),
					marshal(audittest.Allow(at(len(es)+1), 5000, a)),
				}
			}},
		{name: "deny after revocation, allow after re-registration", isValid: true,
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				a := audittest.Agent(2)
				d := audittest.Allow(at(len(es)+3), 5001, a)
				allow := marshal(d)
				return [][]byte{
					marshal(audittest.Revoke(at(len(es)), a)),
					marshal(audittest.Deny(at(len(es)+1), 5000, a)),
					marshal(audittest.Register(at(len(es)+2), a)),
					allow,
					marshal(audittest.ResultFor(at(len(es)+4), uint64(len(es)+3), allow, d)),
				}
			}},
		{name: "allow without result past the window (reported, not fatal)", isValid: true, warnOf: CheckResultDue, warn: "has no result within 1m0s; the log reached",
			opts: Options{Window: time.Minute},
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				return [][]byte{
					marshal(audittest.Allow(at(len(es)), 5000, audittest.Agent(1))),
					marshal(audittest.Deny(at(len(es)).Add(2*time.Minute), 5001, audittest.Agent(1))),
				}
			}},
		{name: "allow without result, audited later (reported, not fatal)", isValid: true, warnOf: CheckResultDue, warn: "has no result within 1m0s; audited at 2026-11-21T10:00:00Z",
			opts: Options{Window: time.Minute, Now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)},
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				return [][]byte{marshal(audittest.Allow(at(len(es)), 5000, audittest.Agent(1)))}
			}},
		{name: "late result is linked after the pass", isValid: true, warnOf: CheckResultDue, warn: "came 3m0s after it, later than the 1m0s window",
			opts: Options{Window: time.Minute},
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				allow := marshal(d)
				return [][]byte{allow,
					marshal(audittest.Deny(at(len(es)).Add(2*time.Minute), 5001, audittest.Agent(1))),
					marshal(audittest.ResultFor(at(len(es)).Add(3*time.Minute), uint64(len(es)), allow, d)),
				}
			}},
		{name: "late result for a deny is still caught", check: CheckResultLink, index: int64(base) + 2, phrase: "which is not an allow decision",
			opts: Options{Window: time.Minute},
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Deny(at(len(es)), 5000, audittest.Agent(1))
				fake := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				return [][]byte{marshal(d),
					marshal(audittest.Deny(at(len(es)).Add(2*time.Minute), 5001, audittest.Agent(1))),
					marshal(audittest.ResultFor(at(len(es)).Add(3*time.Minute), uint64(len(es)), marshal(d), fake)),
				}
			}},
		{name: "late result after capacity eviction: leaf hash still checked", check: CheckResultLink, index: int64(base) + 5, phrase: "names decision leaf hash",
			opts: Options{MaxOpen: 2},
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				d := audittest.Allow(at(len(es)), 5000, audittest.Agent(1))
				out := [][]byte{marshal(d)}
				for k := range 4 {
					out = append(out, marshal(audittest.Allow(at(len(es)+1+k), uint64(6000+k), audittest.Agent(1))))
				}
				return append(out, marshal(audittest.ResultFor(at(len(es)+5), uint64(len(es)), []byte("not the allow"), d)))
			}},
		{name: "not a contract entry", check: CheckParse, index: int64(base), phrase: "is not a valid contract entry",
			extra: func(t *testing.T, es [][]byte, at func(int) time.Time) [][]byte {
				return [][]byte{[]byte(`{"v":1,"kind":"decision"}`)}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			entries := scenarioWith(base, func(es [][]byte, at func(int) time.Time) [][]byte { return c.extra(t, es, at) })
			r := run(t, writeLog(t, k, entries), k, c.opts)
			if c.isValid {
				expectValid(t, r)
			} else {
				expectFailure(t, r, c.check, c.index, c.phrase)
				if r.First == nil || r.First.Check != c.check {
					t.Errorf("first failure %+v, want %s", r.First, c.check)
				}
			}
			if c.warnOf != "" {
				found := false
				for _, f := range r.Check(c.warnOf).Examples {
					found = found || f.Severity == Warn && strings.Contains(f.Message, c.warn)
				}
				if !found {
					t.Errorf("no warning from %s containing %q: %+v", c.warnOf, c.warn, r.Check(c.warnOf).Examples)
				}
			}
		})
	}
}

func TestCheckpointMustVerify(t *testing.T) {
	k := newKey(t)
	dir := writeLog(t, k, audittest.Slice(audittest.DefaultScenario().Entries(10)))
	other := newKey(t)
	r := run(t, dir, other, Options{})
	expectFailure(t, r, CheckCheckpoint, -1, "not signed by a log in the policy")
	if r.Check(CheckRoot).Checked != 0 {
		t.Error("went on after the checkpoint failed")
	}
	// A checkpoint whose root does not match the entries.
	tree := audittest.Slice(audittest.DefaultScenario().Entries(10))
	signed, _ := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n10\n%s\n", origin, b64(rfc6962.DefaultHasher.EmptyRoot()))}, k.signer)
	dir = writeLog(t, k, tree)
	os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644)
	expectFailure(t, run(t, dir, k, Options{}), CheckRoot, -1, "the checkpoint says")
}

func TestUnreadableLog(t *testing.T) {
	k := newKey(t)
	_, err := Run(context.Background(), client.FileFetcher{Root: t.TempDir()}, k.policy, Options{})
	if !errors.Is(err, ErrUnusable) {
		t.Fatalf("got %v", err)
	}
}
