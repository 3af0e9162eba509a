// Package proof checks RFC 6962 Merkle proofs against verified checkpoints:
// that an entry is in the tree a checkpoint commits to (inclusion), and that
// an older checkpoint's tree is a prefix of a newer one's (consistency).
//
// Checkpoints come from trustpolicy.VerifyCheckpoint, so a passing proof means
// the entry or the growth is committed to by a log (and quorum of
// witnesses) the caller trusts. The hashing and proof algorithms are
// transparency-dev/merkle's; this package adds the checks around them
// (same log, sizes in range) and errors that say what did not match.
package proof

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// Outcomes, wrapped with detail; test with errors.Is.
var (
	// ErrInclusion: the inclusion proof does not lead from the leaf to the
	// checkpoint's root hash.
	ErrInclusion = trustpolicy.ErrInclusion
	// ErrConsistency: the consistency proof does not show the old tree is
	// a prefix of the new one; if both checkpoints verified, the log has
	// signed two views (a fork).
	ErrConsistency = errors.New("consistency proof does not verify")
	// ErrRange: an index or size is outside the checkpoint's tree.
	ErrRange = trustpolicy.ErrRange
	// ErrDifferentLogs: the two checkpoints are from different origins.
	ErrDifferentLogs = errors.New("checkpoints are from different logs")
)

// LeafHash is the RFC 6962 leaf hash of an entry: SHA-256(0x00 || entry).
func LeafHash(entry []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(entry) }

// Inclusion checks that the leaf hash is at index in the tree of cp, given
// the audit path (leaf's sibling first).
func Inclusion(cp *trustpolicy.Checkpoint, index uint64, leafHash []byte, path [][]byte) error {
	return cp.VerifyInclusion(index, leafHash, path)
}

// Consistency checks that old's tree is a prefix of new's, given the
// consistency proof from old.Size to new.Size. Equal sizes need equal root
// hashes and an empty proof; an empty old tree is a prefix of any tree.
func Consistency(old, new *trustpolicy.Checkpoint, path [][]byte) error {
	if old.Origin != new.Origin {
		return fmt.Errorf("%w: %q and %q", ErrDifferentLogs, old.Origin, new.Origin)
	}
	if old.Size > new.Size {
		return fmt.Errorf("%w: the old checkpoint (size %d) is larger than the new one (size %d); swap them, or the log went backwards", ErrRange, old.Size, new.Size)
	}
	for _, c := range []*trustpolicy.Checkpoint{old, new} {
		if c.Size == 0 && !bytes.Equal(c.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
			return fmt.Errorf("%w: a checkpoint of size 0 has root %s, not the empty tree's %s", ErrConsistency, b64(c.Hash), b64(rfc6962.DefaultHasher.EmptyRoot()))
		}
	}
	if old.Size == new.Size && !bytes.Equal(old.Hash, new.Hash) {
		return fmt.Errorf("%w: two different roots for tree size %d (%s and %s): the log forked", ErrConsistency, old.Size, b64(old.Hash), b64(new.Hash))
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, new.Size, path, old.Hash, new.Hash); err != nil {
		return fmt.Errorf("%w: from size %d (root %s) to size %d (root %s): %w", ErrConsistency, old.Size, b64(old.Hash), new.Size, b64(new.Hash), err)
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
