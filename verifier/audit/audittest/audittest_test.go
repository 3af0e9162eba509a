package audittest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/contract/entry"
)

func init() { klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

func signer(t testing.TB) note.Signer {
	skey, _, err := note.GenerateKey(nil, "example.com/audittest")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// WriteLog's files are byte for byte what Tessera's POSIX driver writes for
// the same entries (Tessera also keeps partial tiles of earlier sizes and
// its own state; those are not compared).
func TestWriteLogMatchesTessera(t *testing.T) {
	const n = 66_000 // past one level-1 tile (65,536 leaves)
	entries := Slice(DefaultScenario().Entries(n))
	s := signer(t)

	// Tessera sequences concurrent-looking Adds in its own order, so its
	// log is made first and ours from the entries in the order it chose.
	theirs := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := posix.New(ctx, posix.Config{Path: theirs})
	if err != nil {
		t.Fatal(err)
	}
	a, shutdown, _, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().
		WithCheckpointSigner(s).WithBatching(4096, 10*time.Millisecond).WithCheckpointInterval(100*time.Millisecond).WithPushback(n+1))
	if err != nil {
		t.Fatal(err)
	}
	futures := make([]tessera.IndexFuture, n)
	for i, e := range entries {
		futures[i] = a.Add(ctx, tessera.NewEntry(e))
	}
	ordered := make([][]byte, n)
	for i, f := range futures {
		idx, err := f()
		if err != nil || idx.Index >= n || ordered[idx.Index] != nil {
			t.Fatalf("entry %d: index %v, %v", i, idx, err)
		}
		ordered[idx.Index] = entries[i]
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	ours := t.TempDir()
	cp, err := WriteLog(ours, s, Of(ordered))
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != n {
		t.Fatalf("size %d", cp.Size)
	}

	compared := 0
	err = filepath.WalkDir(ours, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(ours, p)
		mine, _ := os.ReadFile(p)
		other, err := os.ReadFile(filepath.Join(theirs, rel))
		if err != nil {
			t.Errorf("%s: Tessera has no such file: %v", rel, err)
			return nil
		}
		if rel == "checkpoint" {
			// Same body; Tessera's note may be a later (equal) size only.
			if !bytes.HasPrefix(other, []byte(strings.SplitN(string(mine), "\n\n", 2)[0])) {
				t.Errorf("checkpoint: ours\n%s\nTessera's\n%s", mine, other)
			}
			return nil
		}
		compared++
		if !bytes.Equal(mine, other) {
			t.Errorf("%s differs from Tessera's (%d vs %d bytes)", rel, len(mine), len(other))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 258 + 258 + 2 + 1; compared != want { // 257 full + 1 partial bundles and level-0 tiles; level 1: 1 full + 1 partial; level 2: 1 partial
		t.Errorf("compared %d files, want %d", compared, want)
	}
}

func TestScenarioEntriesAreValid(t *testing.T) {
	var kinds = map[string]int{}
	for b := range DefaultScenario().Entries(500) {
		e, err := entry.Parse(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		kinds[string(e.EntryKind())]++
	}
	if kinds["decision"] == 0 || kinds["result"] == 0 || kinds["agent"] != 8 || kinds["policy"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
}

// The templated entries are exactly what entry.Marshal writes.
func TestTemplatesMatchMarshal(t *testing.T) {
	s := DefaultScenario()
	entries := Slice(s.Entries(3000))
	// Rebuild the same stream with Marshal.
	var want [][]byte
	i := uint64(0)
	at := func() time.Time { return s.Start.Add(time.Duration(i) * s.Step) }
	add := func(e entry.Entry) []byte { b := MustMarshal(e); want = append(want, b); i++; return b }
	add(&entry.Policy{Time: entry.FormatTime(at()), Hash: PolicyHash, Engine: "opa", Revision: "r1", SourceDigest: entry.Digest([]byte("policy")), LoadedBy: "startup"})
	for a := 0; a < s.Agents; a++ {
		add(Register(at(), Agent(a)))
	}
	type pend struct {
		due, index uint64
		leaf       []byte
		d          *entry.Decision
	}
	var pending []pend
	var decisions uint64
	for uint64(len(want)) < 3000 {
		if len(pending) > 0 && pending[0].due <= i {
			p := pending[0]
			pending = pending[1:]
			add(ResultFor(at(), p.index, p.leaf, p.d))
			continue
		}
		decisions++
		actor := Agent(int(decisions) % s.Agents)
		if decisions%uint64(s.DenyEvery) == 0 {
			add(Deny(at(), decisions, actor))
			continue
		}
		d := Allow(at(), decisions, actor)
		index := i
		b := add(d)
		pending = append(pending, pend{i + uint64(s.ResultLag), index, b, d})
	}
	for k := range want {
		if !bytes.Equal(entries[k], want[k]) {
			t.Fatalf("entry %d:\n%s\nMarshal:\n%s", k, entries[k], want[k])
		}
	}
}
