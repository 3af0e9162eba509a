package history

import (
	"crypto/sha256"
	"math/bits"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Hash is a SHA-256 hash: a leaf hash, a node, a root.
type Hash = [32]byte

var hasher = rfc6962.DefaultHasher

func children(l, r Hash) Hash {
	var h Hash
	copy(h[:], hasher.HashChildren(l[:], r[:]))
	return h
}

// levels is an RFC 6962 tree kept whole: levels[0] are the leaf hashes,
// levels[l][i] the hash of the complete subtree of the 2^l leaves from
// i<<l. A node whose subtree is not complete is not stored.
type levels [][]Hash

// add appends one leaf hash and the complete subtrees it closes.
func (t *levels) add(h Hash) {
	if len(*t) == 0 {
		*t = append(*t, nil)
	}
	(*t)[0] = append((*t)[0], h)
	for l := 0; len((*t)[l])%2 == 0; l++ {
		n := len((*t)[l])
		if l+1 == len(*t) {
			*t = append(*t, nil)
		}
		(*t)[l+1] = append((*t)[l+1], children((*t)[l][n-2], (*t)[l][n-1]))
	}
}

// buildLevels is the tree over the leaf hashes, all at once: each level
// allocated once, hashed with one reused SHA-256 state.
func buildLevels(leaves []Hash) levels {
	if len(leaves) == 0 {
		return nil
	}
	t := levels{leaves}
	h := sha256.New()
	var buf [1 + 2*32]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	for below := leaves; len(below) >= 2; {
		up := make([]Hash, len(below)/2)
		for k := range up {
			copy(buf[1:33], below[2*k][:])
			copy(buf[33:], below[2*k+1][:])
			h.Reset()
			h.Write(buf[:])
			h.Sum(up[k][:0])
		}
		t = append(t, up)
		below = up
	}
	return t
}

// size is the number of leaves.
func (t levels) size() uint64 {
	if len(t) == 0 {
		return 0
	}
	return uint64(len(t[0]))
}

// subtree is MTH of the leaves [lo, hi), hi <= size; lo < hi.
func (t levels) subtree(lo, hi uint64) Hash {
	n := hi - lo
	if n&(n-1) == 0 && lo%n == 0 {
		l := bits.TrailingZeros64(n)
		return t[l][lo>>l]
	}
	k := split(n)
	return children(t.subtree(lo, lo+k), t.subtree(lo+k, hi))
}

// root is MTH of the first n leaves.
func (t levels) root(n uint64) Hash {
	if n == 0 {
		return emptyRoot
	}
	return t.subtree(0, n)
}

// split is the largest power of two smaller than n (n >= 2).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

var emptyRoot = func() Hash {
	var h Hash
	copy(h[:], hasher.EmptyRoot())
	return h
}()

// inclusion is the RFC 6962 inclusion path of leaf i in the tree of the
// first n leaves, leaf's sibling first.
func (t levels) inclusion(i, n uint64) [][]byte {
	var path [][]byte
	var walk func(lo, hi uint64)
	walk = func(lo, hi uint64) {
		if hi-lo == 1 {
			return
		}
		k := split(hi - lo)
		if i < lo+k {
			walk(lo, lo+k)
			h := t.subtree(lo+k, hi)
			path = append(path, h[:])
		} else {
			walk(lo+k, hi)
			h := t.subtree(lo, lo+k)
			path = append(path, h[:])
		}
	}
	walk(0, n)
	return path
}

// multiProof is the multi-leaf inclusion proof of the sorted, distinct
// indices in the tree of the first n leaves (history.md, "Multi-leaf
// inclusion proof").
func (t levels) multiProof(indices []uint64, n uint64) [][]byte {
	var out [][]byte
	var prove func(lo, hi uint64, idx []uint64)
	prove = func(lo, hi uint64, idx []uint64) {
		if len(idx) == 0 {
			h := t.subtree(lo, hi)
			out = append(out, h[:])
			return
		}
		if hi-lo == 1 {
			return
		}
		k := split(hi - lo)
		m := cut(idx, lo+k)
		prove(lo, lo+k, idx[:m])
		prove(lo+k, hi, idx[m:])
	}
	if n > 0 {
		prove(0, n, indices)
	}
	return out
}

// cut is the number of sorted indices below x.
func cut(idx []uint64, x uint64) int {
	lo, hi := 0, len(idx)
	for lo < hi {
		m := (lo + hi) / 2
		if idx[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// MultiRoot computes the root of a tree of size n from the leaf hashes at
// the sorted, distinct indices and a multi-leaf proof (history.md). It
// fails if an index is out of order or range, or the proof has too few or
// too many hashes.
func MultiRoot(n uint64, indices []uint64, leafHashes []Hash, proof [][]byte) (Hash, error) {
	if len(indices) != len(leafHashes) {
		return Hash{}, errf("%d indices and %d leaf hashes", len(indices), len(leafHashes))
	}
	for k, i := range indices {
		if i >= n {
			return Hash{}, errf("index %d is not below the tree size %d", i, n)
		}
		if k > 0 && i <= indices[k-1] {
			return Hash{}, errf("indices not strictly increasing: %d after %d", i, indices[k-1])
		}
	}
	if n == 0 {
		if len(proof) != 0 {
			return Hash{}, errf("%d proof hashes for an empty tree", len(proof))
		}
		return emptyRoot, nil
	}
	next := 0
	var bad error
	var calc func(lo, hi uint64, idx []uint64, hs []Hash) Hash
	calc = func(lo, hi uint64, idx []uint64, hs []Hash) Hash {
		if bad != nil {
			return Hash{}
		}
		if len(idx) == 0 {
			if next >= len(proof) {
				bad = errf("the proof has too few hashes (%d)", len(proof))
				return Hash{}
			}
			var h Hash
			if len(proof[next]) != 32 {
				bad = errf("proof hash %d is %d bytes, not 32", next, len(proof[next]))
				return Hash{}
			}
			copy(h[:], proof[next])
			next++
			return h
		}
		if hi-lo == 1 {
			return hs[0]
		}
		k := split(hi - lo)
		m := cut(idx, lo+k)
		l := calc(lo, lo+k, idx[:m], hs[:m])
		r := calc(lo+k, hi, idx[m:], hs[m:])
		return children(l, r)
	}
	root := calc(0, n, indices, leafHashes)
	if bad != nil {
		return Hash{}, bad
	}
	if next != len(proof) {
		return Hash{}, errf("the proof has %d hashes, %d were used", len(proof), next)
	}
	return root, nil
}
