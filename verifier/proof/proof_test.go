package proof

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

func init() { klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

type testLog struct {
	signer note.Signer
	policy *trustpolicy.Policy
}

func newTestLog(t testing.TB, origin string) testLog {
	t.Helper()
	skey, vkey, err := ztlog.GenerateKey(origin)
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
	return testLog{s, p}
}

func (l testLog) checkpoint(t testing.TB, size uint64, root []byte) *trustpolicy.Checkpoint {
	t.Helper()
	text := fmt.Sprintf("%s\n%d\n%s\n", l.signer.Name(), size, b64(root))
	signed, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := l.policy.VerifyCheckpoint(signed, trustpolicy.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func entry(i int) []byte { return []byte(fmt.Sprintf("entry %d", i)) }

func TestInclusionAndConsistency(t *testing.T) {
	l := newTestLog(t, "example.com/proof-test")
	tree := testonly.New(rfc6962.DefaultHasher)
	var cps []*trustpolicy.Checkpoint
	for i := range 70 {
		tree.AppendData(entry(i))
		cps = append(cps, l.checkpoint(t, tree.Size(), tree.Hash()))
	}
	for _, cp := range []*trustpolicy.Checkpoint{cps[0], cps[16], cps[69]} {
		for i := uint64(0); i < cp.Size; i++ {
			p, err := tree.InclusionProof(i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := Inclusion(cp, i, LeafHash(entry(int(i))), p); err != nil {
				t.Fatalf("index %d size %d: %v", i, cp.Size, err)
			}
			if err := Inclusion(cp, i, LeafHash(entry(int(i)+1)), p); !errors.Is(err, ErrInclusion) {
				t.Fatalf("wrong leaf accepted: %v", err)
			}
			if len(p) > 0 {
				p[len(p)-1] = LeafHash(nil)
				if err := Inclusion(cp, i, LeafHash(entry(int(i))), p); !errors.Is(err, ErrInclusion) {
					t.Fatalf("altered path accepted: %v", err)
				}
			}
		}
		if err := Inclusion(cp, cp.Size, LeafHash(entry(0)), nil); !errors.Is(err, ErrRange) {
			t.Fatalf("index beyond tree: %v", err)
		}
	}
	for _, a := range []int{0, 1, 6, 15, 31, 40} {
		for _, b := range []int{a, 31, 63, 69} {
			if b < a {
				continue
			}
			p, err := tree.ConsistencyProof(cps[a].Size, cps[b].Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := Consistency(cps[a], cps[b], p); err != nil {
				t.Fatalf("%d..%d: %v", cps[a].Size, cps[b].Size, err)
			}
			if a != b {
				if err := Consistency(cps[b], cps[a], p); !errors.Is(err, ErrRange) {
					t.Fatalf("reversed: %v", err)
				}
			}
		}
	}
}

// A fork: the same log key signs two trees that differ at one entry.
func TestForkDetected(t *testing.T) {
	l := newTestLog(t, "example.com/proof-test")
	a, b := testonly.New(rfc6962.DefaultHasher), testonly.New(rfc6962.DefaultHasher)
	for i := range 40 {
		a.AppendData(entry(i))
		if i == 25 {
			b.AppendData([]byte("the other view"))
		} else {
			b.AppendData(entry(i))
		}
	}
	old := l.checkpoint(t, 30, a.HashAt(30))
	forked := l.checkpoint(t, 40, b.Hash())
	p, err := b.ConsistencyProof(30, 40)
	if err != nil {
		t.Fatal(err)
	}
	if err := Consistency(old, forked, p); !errors.Is(err, ErrConsistency) {
		t.Fatalf("fork not detected: %v", err)
	}
	same := l.checkpoint(t, 30, b.HashAt(30))
	if err := Consistency(old, same, nil); !errors.Is(err, ErrConsistency) {
		t.Fatalf("two roots for one size not detected: %v", err)
	}
	bogusEmpty := l.checkpoint(t, 0, a.Hash())
	if err := Consistency(bogusEmpty, old, nil); !errors.Is(err, ErrConsistency) {
		t.Fatalf("size 0 with a non-empty root accepted: %v", err)
	}
	other := newTestLog(t, "example.org/another")
	if err := Consistency(old, other.checkpoint(t, 40, a.Hash()), nil); !errors.Is(err, ErrDifferentLogs) {
		t.Fatalf("different logs: %v", err)
	}
}

// Proofs made by the real log (Tessera POSIX in a temp dir) verify.
func TestAgainstTheLog(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := ztlog.GenerateKey("example.com/proof-test-log")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: backend, Key: key, CheckpointInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	pol, err := trustpolicy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	var old *trustpolicy.Checkpoint
	for round := range 2 {
		var last uint64
		for i := range 300 {
			last, err = l.Append(ctx, entry(round*1000+i))
			if err != nil {
				t.Fatal(err)
			}
		}
		pub, err := l.Await(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := pol.VerifyCheckpoint(pub.Note, trustpolicy.VerifyOptions{Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []uint64{0, 255, 256, last} {
			leaf, _, err := l.Entry(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			p, err := l.InclusionProof(ctx, i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := Inclusion(cp, i, LeafHash(leaf), p); err != nil {
				t.Fatalf("index %d: %v", i, err)
			}
		}
		if old != nil {
			p, err := l.ConsistencyProof(ctx, old.Size, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := Consistency(old, cp, p); err != nil {
				t.Fatal(err)
			}
		}
		old = cp
	}
}
