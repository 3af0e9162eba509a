package history

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

func synthLeaf(i uint64) Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return sha256.Sum256(b[:])
}

// TestLevelsAgreeWithCompactRange: the kept tree's root at every size is
// transparency-dev/merkle's RFC 6962 root.
func TestLevelsAgreeWithCompactRange(t *testing.T) {
	var tr levels
	rf := &compact.RangeFactory{Hash: hasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for n := uint64(1); n <= 300; n++ {
		h := synthLeaf(n - 1)
		tr.add(h)
		if err := cr.Append(h[:], nil); err != nil {
			t.Fatal(err)
		}
		want, err := cr.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.root(n); string(got[:]) != string(want) {
			t.Fatalf("size %d: root differs from the compact range's", n)
		}
		if got := buildLevels(append([]Hash(nil), tr[0]...)).root(n); string(got[:]) != string(want) {
			t.Fatalf("size %d: the tree built at once has another root than the compact range's", n)
		}
	}
}

// TestInclusionVerifiesWithMerkleProof: the map's inclusion paths verify
// with transparency-dev/merkle/proof.
func TestInclusionVerifiesWithMerkleProof(t *testing.T) {
	var tr levels
	for i := uint64(0); i < 77; i++ {
		tr.add(synthLeaf(i))
	}
	for _, n := range []uint64{1, 2, 3, 8, 33, 77} {
		root := tr.root(n)
		for i := uint64(0); i < n; i++ {
			h := tr[0][i]
			if err := proof.VerifyInclusion(hasher, i, n, h[:], tr.inclusion(i, n), root[:]); err != nil {
				t.Fatalf("leaf %d of %d: %v", i, n, err)
			}
		}
	}
}

// TestMultiProofRoundTrip: for many index sets, the multi-leaf proof
// rebuilds the root; a single index's proof has the inclusion path's
// length.
func TestMultiProofRoundTrip(t *testing.T) {
	var tr levels
	for i := uint64(0); i < 600; i++ {
		tr.add(synthLeaf(i))
	}
	sets := [][]uint64{{0}, {599}, {0, 599}, {1, 2, 3}, {255, 256}, {10, 100, 300, 511, 512, 513}}
	for _, n := range []uint64{600, 513, 1000 / 2} {
		root := tr.root(n)
		for _, set := range sets {
			var idx []uint64
			var hs []Hash
			for _, i := range set {
				if i < n {
					idx = append(idx, i)
					hs = append(hs, tr[0][i])
				}
			}
			p := tr.multiProof(idx, n)
			got, err := MultiRoot(n, idx, hs, p)
			if err != nil {
				t.Fatalf("size %d, %v: %v", n, idx, err)
			}
			if got != root {
				t.Fatalf("size %d, %v: root differs", n, idx)
			}
			if len(idx) == 1 && len(p) != len(tr.inclusion(idx[0], n)) {
				t.Errorf("size %d, %v: %d hashes, the inclusion path has %d", n, idx, len(p), len(tr.inclusion(idx[0], n)))
			}
		}
	}
}

// TestMultiRootRefusesExtraHash: a proof with a hash too many fails.
func TestMultiRootRefusesExtraHash(t *testing.T) {
	var tr levels
	for i := uint64(0); i < 10; i++ {
		tr.add(synthLeaf(i))
	}
	p := tr.multiProof([]uint64{3}, 10)
	p = append(p, make([]byte, 32))
	if _, err := MultiRoot(10, []uint64{3}, []Hash{tr[0][3]}, p); err == nil {
		t.Fatal("a proof with an extra hash verified")
	}
}
