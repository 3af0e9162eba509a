package audit

import (
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/verifier/audit/audittest"
	"github.com/zt-infra/ztlog/verifier/history"
)

// indexNote is the signed index checkpoint of the first n entries, with
// edit applied before signing.
func indexNote(t *testing.T, k testKey, entries [][]byte, n int, edit func(*history.IndexCheckpoint)) []byte {
	t.Helper()
	x := history.New(history.Options{KeepTree: true})
	for _, e := range entries[:n] {
		x.Apply(e)
	}
	ic := x.IndexCheckpoint(origin, x.Snapshot())
	if edit != nil {
		edit(&ic)
	}
	signed, err := ic.Sign(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// The served history index is checked against the entries: the right one
// passes (at the checkpoint's size and at an earlier one), a wrong map
// root, key count or log root fails history.index, and one signed by
// another key fails too.
func TestAuditChecksHistoryIndex(t *testing.T) {
	entries := audittest.Slice(audittest.DefaultScenario().Entries(300))
	k := newKey(t)
	dir := writeLog(t, k, entries)
	for _, n := range []int{300, 257, 0} {
		r := run(t, dir, k, Options{HistoryIndex: indexNote(t, k, entries, n, nil)})
		c := r.Check(CheckHistory)
		if !r.Valid {
			t.Fatalf("size %d: the right index failed: %+v", n, r.First)
		}
		if c.Checked != 1 {
			t.Errorf("size %d: history.index checked %d, want 1", n, c.Checked)
		}
		if c.Warned != 0 {
			t.Errorf("size %d: history.index warned %d", n, c.Warned)
		}
	}
	bad := []struct {
		name string
		edit func(*history.IndexCheckpoint)
		want string
	}{
		{"map root", func(ic *history.IndexCheckpoint) { ic.MapRoot[0] ^= 1 }, "map root"},
		{"key count", func(ic *history.IndexCheckpoint) { ic.MapSize-- }, "keys"},
		{"log root", func(ic *history.IndexCheckpoint) { ic.LogRoot[0] ^= 1 }, "log root"},
	}
	for _, b := range bad {
		r := run(t, dir, k, Options{HistoryIndex: indexNote(t, k, entries, 200, b.edit)})
		if r.Valid {
			t.Errorf("%s: a wrong index passed", b.name)
			continue
		}
		if r.First.Check != CheckHistory {
			t.Errorf("%s: first failure %s, want %s", b.name, r.First.Check, CheckHistory)
		}
		if !strings.Contains(r.First.Message, b.want) {
			t.Errorf("%s: message %q does not name the %s", b.name, r.First.Message, b.want)
		}
	}
	other := newKey(t)
	r := run(t, dir, k, Options{HistoryIndex: indexNote(t, other, entries, 300, nil)})
	if r.Valid || r.First.Check != CheckHistory {
		t.Errorf("an index signed by another key: valid %v, first %+v", r.Valid, r.First)
	}
	r = run(t, dir, k, Options{})
	if got := r.Check(CheckHistory).Status(); got != "not run" {
		t.Errorf("no index served: status %q, want not run", got)
	}
}
