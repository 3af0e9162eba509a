package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// withBundle serves a log directory with entry bundle 0 replaced.
type withBundle struct {
	client.FileFetcher
	bundle0 []byte
}

func (w withBundle) ReadEntryBundle(ctx context.Context, i uint64, p uint8) ([]byte, error) {
	if i == 0 {
		return w.bundle0, nil
	}
	return w.FileFetcher.ReadEntryBundle(ctx, i, p)
}

// FuzzAuditBundle: the audit reads entry bundles from the log; whatever
// bytes are served in place of the (partial) bundle of a 5-entry log, it
// never panics, passes the log's own bundle, and passes nothing that does
// not begin with it (a partial bundle may be answered with a longer one:
// bundles only grow).
func FuzzAuditBundle(f *testing.F) {
	k := newKey(f)
	dir := f.TempDir()
	if _, err := audittest.WriteLog(dir, k.signer, audittest.DefaultScenario().Entries(5)); err != nil {
		f.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(dir, layout.EntriesPath(0, 5)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	f.Add(orig[:len(orig)-1])
	f.Add(append(append([]byte(nil), orig...), 0, 1, 'x'))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Run(context.Background(), withBundle{client.FileFetcher{Root: dir}, b}, k.policy, Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Valid && !bytes.HasPrefix(b, orig) {
			t.Fatalf("a bundle that does not begin with the log's passed: %+v", r)
		}
		if !r.Valid && bytes.Equal(b, orig) {
			t.Fatalf("the log's own bundle failed: %+v", r.First)
		}
	})
}

// FuzzRestoreAuditor: saved state is read back without panics, and what
// is accepted saves again.
func FuzzRestoreAuditor(f *testing.F) {
	k := newKey(f)
	dir := f.TempDir()
	if _, err := audittest.WriteLog(dir, k.signer, audittest.DefaultScenario().Entries(300)); err != nil {
		f.Fatal(err)
	}
	a := NewAuditor(Options{})
	raw, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	cp, err := a.VerifyCheckpoint(raw, k.policy)
	if err != nil {
		f.Fatal(err)
	}
	if err := a.Advance(context.Background(), client.FileFetcher{Root: dir}, cp); err != nil {
		f.Fatal(err)
	}
	saved, err := a.MarshalState()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(saved)
	f.Add([]byte(`{"v":1,"tree":{"size":3,"range":[],"tiles":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := RestoreAuditor(Options{}, b)
		if err != nil {
			return
		}
		if _, err := r.MarshalState(); err != nil {
			t.Fatal(err)
		}
	})
}
