package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

const testOrigin = "test.example/ztlog"

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	// Tessera logs through klog; keep test output to the tests.
	klog.SetSlogLogger(quietLogger)
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

func testKey(t testing.TB, origin string) *Key {
	t.Helper()
	skey, _, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openTestLog(t testing.TB, dir string, key *Key, mod func(*Options)) *Log {
	t.Helper()
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond, Logger: quietLogger}
	if mod != nil {
		mod(&opts)
	}
	l, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func entryN(i int) []byte {
	return []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i%97)))
}

// appendAll appends n distinct entries from conc goroutines and returns the
// entry committed at each index.
func appendAll(t *testing.T, l *Log, from, n, conc int) map[uint64][]byte {
	t.Helper()
	var mu sync.Mutex
	got := map[uint64][]byte{}
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, n)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				e := entryN(i)
				idx, err := l.Append(context.Background(), e)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				if _, dup := got[idx]; dup {
					errs <- fmt.Errorf("index %d returned twice", idx)
				}
				got[idx] = e
				mu.Unlock()
			}
		}()
	}
	for i := from; i < from+n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return got
}

func TestAppendAwaitAndProve(t *testing.T) {
	dir := logtest.Dir(t)
	key := testKey(t, testOrigin)
	l := openTestLog(t, dir, key, nil)
	defer closeLog(t, l)
	ctx := context.Background()

	const n = 700 // crosses entry bundle and level-0 tile boundaries (256)
	got := appendAll(t, l, 0, n, 32)
	if len(got) != n {
		t.Fatalf("got %d indices, want %d", len(got), n)
	}
	for i := range uint64(n) {
		if _, ok := got[i]; !ok {
			t.Fatalf("index %d missing: indices are not dense 0..%d", i, n-1)
		}
	}
	cp, err := l.Await(ctx, n-1)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size < n {
		t.Fatalf("Await(%d) returned size %d", n-1, cp.Size)
	}
	// The note verifies with only the published verifier key.
	v, err := note.NewVerifier(key.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, _, err := flog.ParseCheckpoint(cp.Note, testOrigin, v)
	if err != nil {
		t.Fatalf("checkpoint does not verify with the verifier key: %v", err)
	}
	if parsed.Size != cp.Size || !bytes.Equal(parsed.Hash, cp.Hash) {
		t.Fatal("Checkpoint fields differ from the signed note")
	}
	// Root recomputed from the entries we appended equals the checkpoint's.
	leaves := make([][]byte, cp.Size)
	for i := range cp.Size {
		leaves[i] = got[i]
	}
	if root := merkleRoot(leaves); !bytes.Equal(root, cp.Hash) {
		t.Fatalf("root of appended entries %x != checkpoint root %x", root, cp.Hash)
	}
	for i := range cp.Size {
		leaf, _, err := l.Entry(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(leaf, got[i]) {
			t.Fatalf("entry %d: got %q, appended %q", i, leaf, got[i])
		}
		p, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, LeafHash(leaf), p, cp.Hash); err != nil {
			t.Fatalf("inclusion proof for %d: %v", i, err)
		}
	}
	// Consistency between assorted sizes, roots recomputed independently.
	for _, sz := range [][2]uint64{{1, 2}, {3, 700}, {255, 256}, {256, 257}, {100, 513}, {700, 700}, {0, 700}} {
		p, err := l.ConsistencyProof(ctx, sz[0], sz[1])
		if err != nil {
			t.Fatalf("consistency %v: %v", sz, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, sz[0], sz[1], p, merkleRoot(leaves[:sz[0]]), merkleRoot(leaves[:sz[1]])); err != nil {
			t.Fatalf("consistency %v does not verify: %v", sz, err)
		}
	}
	// Beyond the published tree: ErrNotFound, never a guess.
	if _, _, err := l.Entry(ctx, cp.Size); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Entry(size) = %v, want ErrNotFound", err)
	}
	if _, err := l.InclusionProof(ctx, 0, cp.Size+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("InclusionProof beyond size = %v, want ErrNotFound", err)
	}
	if _, err := l.ConsistencyProof(ctx, 5, 4); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ConsistencyProof(5,4) = %v, want ErrNotFound", err)
	}
}

// merkleRoot is an independent RFC 6962 root computation (MTH of D[0:n]).
func merkleRoot(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	if len(leaves) == 0 {
		return h.EmptyRoot()
	}
	if len(leaves) == 1 {
		return h.HashLeaf(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return h.HashChildren(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

func TestReopenContinuesTheSameLog(t *testing.T) {
	dir := logtest.Dir(t)
	key := testKey(t, testOrigin)
	ctx := context.Background()

	l := openTestLog(t, dir, key, nil)
	first := appendAll(t, l, 0, 300, 8)
	old, err := l.Await(ctx, 299)
	if err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)

	l = openTestLog(t, dir, key, nil)
	defer closeLog(t, l)
	second := appendAll(t, l, 300, 50, 4)
	for idx := range second {
		if idx < 300 {
			t.Fatalf("reopened log reused index %d", idx)
		}
	}
	cp, err := l.Await(ctx, 349)
	if err != nil {
		t.Fatal(err)
	}
	for idx, want := range first {
		leaf, _, err := l.Entry(ctx, idx)
		if err != nil || !bytes.Equal(leaf, want) {
			t.Fatalf("entry %d after reopen: %q, %v; want %q", idx, leaf, err, want)
		}
	}
	p, err := l.ConsistencyProof(ctx, old.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, p, old.Hash, cp.Hash); err != nil {
		t.Fatalf("checkpoint after reopen is not consistent with the one before: %v", err)
	}
}

func TestReopenRefusesAnotherKeyOrOrigin(t *testing.T) {
	dir := logtest.Dir(t)
	key := testKey(t, testOrigin)
	l := openTestLog(t, dir, key, nil)
	appendAll(t, l, 0, 10, 2)
	closeLog(t, l)
	cpPath := filepath.Join(dir, "checkpoint")
	before, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		key  *Key
		want string
	}{
		{"other key, same origin", testKey(t, testOrigin), "not signed by the key"},
		{"other origin", testKey(t, "other.example/log"), `holds the log "test.example/ztlog"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := posix.Open(context.Background(), posix.Config{Dir: dir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(context.Background(), Options{Backend: b, Key: tc.key, Logger: quietLogger})
			if !errors.Is(err, ErrWrongLog) {
				t.Fatalf("Open = %v, want ErrWrongLog", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			after, _ := os.ReadFile(cpPath)
			if !bytes.Equal(before, after) {
				t.Fatal("refused Open changed the published checkpoint")
			}
		})
	}
}

func TestAppendRefusals(t *testing.T) {
	l := openTestLog(t, logtest.Dir(t), testKey(t, testOrigin), nil)
	ctx := context.Background()
	if _, err := l.Append(ctx, nil); !errors.Is(err, ErrEmptyEntry) {
		t.Fatalf("empty: %v", err)
	}
	_, err := l.Append(ctx, make([]byte, 1<<16))
	if !errors.Is(err, ErrEntryTooLarge) || !strings.Contains(err.Error(), "65536 bytes, the limit is 65535") {
		t.Fatalf("65536 bytes: %v", err)
	}
	idx, err := l.Append(ctx, bytes.Repeat([]byte{'a'}, 1<<16-1))
	if err != nil {
		t.Fatalf("65535 bytes must be accepted: %v", err)
	}
	if idx != 0 {
		t.Fatalf("refused appends consumed indices: first accepted got %d", idx)
	}
	closeLog(t, l)
	if _, err := l.Append(ctx, []byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestCloseWaitsForPublication(t *testing.T) {
	dir := logtest.Dir(t)
	l := openTestLog(t, dir, testKey(t, testOrigin), func(o *Options) { o.CheckpointInterval = time.Second })
	got := appendAll(t, l, 0, 100, 10)
	closeLog(t, l)
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var cp flog.Checkpoint
	if _, err := cp.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if cp.Size != uint64(len(got)) {
		t.Fatalf("after Close the published size is %d, want %d", cp.Size, len(got))
	}
}

func TestPushbackLosesNothing(t *testing.T) {
	l := openTestLog(t, logtest.Dir(t), testKey(t, testOrigin), func(o *Options) { o.MaxPending = 2 })
	defer closeLog(t, l)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[uint64][]byte{}
	pushed := 0
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := entryN(i)
			idx, err := l.Append(ctx, e)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrPushback):
				pushed++
			case err != nil:
				t.Errorf("append: %v", err)
			default:
				accepted[idx] = e
			}
		}()
	}
	wg.Wait()
	if pushed == 0 {
		t.Fatal("400 simultaneous appends against MaxPending=2 saw no pushback")
	}
	if len(accepted)+pushed != 400 {
		t.Fatalf("accepted %d + pushed back %d != 400", len(accepted), pushed)
	}
	for idx, want := range accepted {
		leaf, _, err := entryEventually(l, idx)
		if err != nil || !bytes.Equal(leaf, want) {
			t.Fatalf("accepted entry %d: %q %v", idx, leaf, err)
		}
	}
	// Indices are dense: pushback never leaves a hole.
	keys := make([]int, 0, len(accepted))
	for k := range accepted {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for i, k := range keys {
		if k != i {
			t.Fatalf("indices not dense after pushback: position %d holds %d", i, k)
		}
	}
}

func entryEventually(l *Log, idx uint64) ([]byte, *Checkpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.Await(ctx, idx); err != nil {
		return nil, nil, err
	}
	return l.Entry(ctx, idx)
}

func TestStorageFailureIsTypedAndRecovers(t *testing.T) {
	dir := logtest.Dir(t)
	l := openTestLog(t, dir, testKey(t, testOrigin), nil)
	defer closeLog(t, l)
	ctx := context.Background()
	if _, err := l.Append(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Put a file where the tile directory must be: the next write fails.
	tiles := filepath.Join(dir, "tile")
	if err := os.Rename(tiles, tiles+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tiles, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := l.Append(ctx, []byte("during"))
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("append on broken storage = %v, want ErrStorage", err)
	}
	os.Remove(tiles)
	if err := os.Rename(tiles+".away", tiles); err != nil {
		t.Fatal(err)
	}
	idx, err := l.Append(ctx, []byte("after"))
	if err != nil {
		t.Fatalf("append after repair: %v", err)
	}
	if idx != 1 {
		t.Fatalf("the failed append took an index: next index is %d, want 1", idx)
	}
	leaf, _, err := entryEventually(l, 1)
	if err != nil || string(leaf) != "after" {
		t.Fatalf("entry 1 = %q, %v", leaf, err)
	}
}

func TestAwaitManyWaitersAndCancel(t *testing.T) {
	l := openTestLog(t, logtest.Dir(t), testKey(t, testOrigin), nil)
	defer closeLog(t, l)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, err := l.Append(ctx, entryN(i))
			if err != nil {
				errs <- err
				return
			}
			cp, err := l.Await(ctx, idx)
			if err != nil {
				errs <- err
				return
			}
			if cp.Size <= idx {
				errs <- fmt.Errorf("Await(%d) returned size %d", idx, cp.Size)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := l.Await(cctx, 1<<40); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await beyond the log = %v, want deadline exceeded", err)
	}
	if n := l.watcher.waiterCount(); n != 0 {
		t.Fatalf("%d waiters left behind after cancellation", n)
	}
}

// TestPublishedCheckpointsMustBeConsistent: the watcher refuses a checkpoint
// that goes backwards, forks, or does not extend the previous one. The
// reopened log uses a five-minute checkpoint interval so that nothing but the
// test writes the checkpoint file.
func TestPublishedCheckpointsMustBeConsistent(t *testing.T) {
	key := testKey(t, testOrigin)
	sign := func(size uint64, root []byte) []byte {
		n, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: testOrigin, Size: size, Hash: root}.Marshal())}, key.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	other := rfc6962.DefaultHasher.HashLeaf([]byte("not in the log"))
	for _, tc := range []struct {
		name    string
		atOpen  func(real []byte) []byte // checkpoint file when the log opens (nil: unchanged)
		later   func(real []byte) []byte // checkpoint file written afterwards
		wantMsg string
	}{
		{"rollback", nil, func([]byte) []byte { return sign(1, other) }, "size went from 5 to 1"},
		{"fork", nil, func([]byte) []byte { return sign(5, other) }, "two roots for size 5"},
		{"no extension", func([]byte) []byte { return sign(1, other) }, func(real []byte) []byte { return real }, "is not an extension of size 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := logtest.Dir(t)
			l := openTestLog(t, dir, key, nil)
			appendAll(t, l, 0, 5, 1)
			closeLog(t, l)
			cpPath := filepath.Join(dir, "checkpoint")
			real, err := os.ReadFile(cpPath)
			if err != nil {
				t.Fatal(err)
			}
			if tc.atOpen != nil {
				os.WriteFile(cpPath, tc.atOpen(real), 0o644)
			}
			l = openTestLog(t, dir, key, func(o *Options) { o.CheckpointInterval = 5 * time.Minute })
			defer closeLog(t, l)
			ctx := context.Background()
			if _, err := l.Checkpoint(); err != nil {
				t.Fatalf("no checkpoint after open: %v", err)
			}
			os.WriteFile(cpPath, tc.later(real), 0o644)
			l.watcher.refresh(ctx)
			_, err = l.Await(ctx, 0)
			if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Await = %v, want ErrInconsistent saying %q", err, tc.wantMsg)
			}
			if err := l.Healthy(ctx); !errors.Is(err, ErrInconsistent) {
				t.Fatalf("Healthy = %v, want ErrInconsistent", err)
			}
			// Sticky: the good checkpoint back does not clear it.
			os.WriteFile(cpPath, real, 0o644)
			l.watcher.refresh(ctx)
			if _, err := l.Checkpoint(); !errors.Is(err, ErrInconsistent) {
				t.Fatalf("inconsistency cleared itself: %v", err)
			}
		})
	}
}

func TestScanAndIntegratedSize(t *testing.T) {
	l := openTestLog(t, logtest.Dir(t), testKey(t, testOrigin), nil)
	defer closeLog(t, l)
	ctx := context.Background()
	want := appendAll(t, l, 0, 600, 8)
	n, err := l.IntegratedSize(ctx)
	if err != nil || n != 600 {
		t.Fatalf("IntegratedSize = %d, %v", n, err)
	}
	if _, err := l.Await(ctx, n-1); err != nil {
		t.Fatal(err)
	}
	next := uint64(250)
	if err := l.Scan(ctx, 250, 600, func(i uint64, leaf []byte) error {
		if i != next || !bytes.Equal(leaf, want[i]) {
			t.Fatalf("scan gave index %d (want %d) = %q", i, next, leaf)
		}
		next++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if next != 600 {
		t.Fatalf("scan stopped at %d", next)
	}
	if err := l.Scan(ctx, 0, 601, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("scan beyond the tree: %v", err)
	}
}

// An append whose caller stops waiting may still be sequenced: Append says
// so (ErrAbandoned, wrapping the context's error), and AppendThen reports
// the entry's index once it is, so the caller can record it.
func TestAppendThenReportsAnAbandonedEntry(t *testing.T) {
	l := openTestLog(t, t.TempDir(), testKey(t, "example.com/abandoned"), func(o *Options) {
		o.CommitDelay, o.CommitSiblings = 100*time.Millisecond, 1 // every batch waits: the caller gives up first
	})
	defer closeLog(t, l)
	leaf := entryN(1)
	late := make(chan uint64, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := l.AppendThen(ctx, leaf, func(idx uint64, err error) {
		if err != nil {
			t.Errorf("the abandoned entry was refused: %v", err)
		}
		late <- idx
	})
	if !errors.Is(err, ErrAbandoned) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AppendThen with a 1ms deadline and a 100ms commit delay = %v, want ErrAbandoned wrapping the deadline", err)
	}
	select {
	case idx := <-late:
		got, _, err := entryEventually(l, idx)
		if err != nil || !bytes.Equal(got, leaf) {
			t.Fatalf("entry %d reported late: %q, %v; want the abandoned entry", idx, got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned entry's fate was never reported")
	}
}
