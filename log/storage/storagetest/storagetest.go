// Package storagetest holds what every storage driver test asks of a log.
package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	ztlog "github.com/zt-infra/ztlog/log"
)

// AppendAndProve is what every driver test asks of a new log first: 300
// appends get indices 0..299, a checkpoint covering them is published
// within wait, entries 0, 255, 256 and 299 (both sides of a bundle edge)
// read back as written and are proven included, and the log closes
// cleanly. It returns the entries and that checkpoint.
func AppendAndProve(t testing.TB, l *ztlog.Log, tag string, wait time.Duration) ([][]byte, *ztlog.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	var entries [][]byte
	for i := range 300 {
		e := []byte(fmt.Sprintf(`{%q:%d,"pad":%q}`, tag, i, strings.Repeat("p", i%40)))
		idx, err := l.Append(ctx, e)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if idx != uint64(i) {
			t.Fatalf("append %d got index %d", i, idx)
		}
		entries = append(entries, e)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cp, err := l.Await(wctx, 299)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{0, 255, 256, 299} {
		leaf, _, err := l.Entry(ctx, i)
		if err != nil || !bytes.Equal(leaf, entries[i]) {
			t.Fatalf("entry %d: %q %v", i, leaf, err)
		}
		p, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, ztlog.LeafHash(leaf), p, cp.Hash); err != nil {
			t.Fatalf("inclusion %d: %v", i, err)
		}
	}
	if err := l.Close(wctx); err != nil {
		t.Fatal(err)
	}
	return entries, cp
}

// ContinuesAfterReopen checks that l, the log reopened on the storage
// AppendAndProve filled, continues it: the next append gets index 300, the
// new checkpoint is consistent with cp, and old entries are unchanged.
func ContinuesAfterReopen(t testing.TB, l *ztlog.Log, entries [][]byte, cp *ztlog.Checkpoint, wait time.Duration) {
	t.Helper()
	ctx := context.Background()
	idx, err := l.Append(ctx, []byte("after reopen"))
	if err != nil || idx != 300 {
		t.Fatalf("append after reopen: %d %v", idx, err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cp2, err := l.Await(wctx, 300)
	if err != nil {
		t.Fatal(err)
	}
	if cp2.Size <= cp.Size {
		t.Fatalf("size after reopen %d, before %d", cp2.Size, cp.Size)
	}
	cons, err := l.ConsistencyProof(ctx, cp.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, cp2.Size, cons, cp.Hash, cp2.Hash); err != nil {
		t.Fatalf("checkpoint after reopen is not consistent with the one before: %v", err)
	}
	for _, i := range []uint64{0, 299} {
		leaf, _, err := l.Entry(ctx, i)
		if err != nil || !bytes.Equal(leaf, entries[i]) {
			t.Fatalf("entry %d after reopen: %q %v", i, leaf, err)
		}
	}
}
