package daal

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/internal/tiles"
	"golang.org/x/mod/sumdb/note"
)

// Source is read access to a C2SP tlog-tiles log: the published checkpoint,
// tiles and entry bundles. *log.Log, and Tessera's client.HTTPFetcher and
// client.FileFetcher, are Sources (log/anchor/daal.OpenSource opens one).
type Source interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// Tree reads and proves a log through a Source, trusting only the log's
// checkpoint verifier key.
type Tree struct {
	src      Source
	origin   string
	verifier note.Verifier
}

// Checkpoint is a verified checkpoint of the log.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	// Note is the signed note as read.
	Note []byte
}

// NewTree reads the log of the given checkpoint verifier key (signed-note
// text form) from src.
func NewTree(src Source, verifierKey string) (*Tree, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return nil, fmt.Errorf("log verifier key %q: %w", verifierKey, err)
	}
	return &Tree{src: src, origin: v.Name(), verifier: v}, nil
}

// Origin is the log's origin.
func (t *Tree) Origin() string { return t.origin }

// Verifier is the log's checkpoint verifier.
func (t *Tree) Verifier() note.Verifier { return t.verifier }

// Checkpoint reads the published checkpoint and verifies its signature.
func (t *Tree) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	raw, err := t.src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the log's checkpoint: %w", err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, t.origin, t.verifier)
	if err != nil {
		return nil, fmt.Errorf("the log's checkpoint does not verify with its key: %w", err)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: raw}, nil
}

// tiles fetches tiles for proofs in any tree no larger than published
// (see internal/tiles).
func (t *Tree) tiles(published uint64) client.TileFetcherFunc {
	return tiles.Fetcher(t.src.ReadTile, published)
}

// RootAt computes the root of the tree's first size entries, from the tiles
// of the published tree cp (size <= cp.Size).
func (t *Tree) RootAt(ctx context.Context, cp *Checkpoint, size uint64) ([]byte, error) {
	switch {
	case size == cp.Size:
		return cp.Root, nil
	case size > cp.Size:
		return nil, fmt.Errorf("size %d is beyond the published tree (%d)", size, cp.Size)
	case size == 0:
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	leaves, err := client.FetchLeafHashes(ctx, t.tiles(cp.Size), size-1, 1, cp.Size)
	if err != nil || len(leaves) != 1 {
		return nil, fmt.Errorf("read leaf hash %d: %w", size-1, err)
	}
	p, err := t.InclusionProof(ctx, cp, size-1, size)
	if err != nil {
		return nil, err
	}
	root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, size-1, size, leaves[0], p)
	if err != nil {
		return nil, err
	}
	// The root just computed must be a prefix of the published one.
	if err := t.VerifyConsistent(ctx, cp, size, root); err != nil {
		return nil, err
	}
	return root, nil
}

// InclusionProof proves entry index into the tree of the given size
// (size <= cp.Size).
func (t *Tree) InclusionProof(ctx context.Context, cp *Checkpoint, index, size uint64) ([][]byte, error) {
	if size > cp.Size || index >= size {
		return nil, fmt.Errorf("no inclusion proof of %d in %d under a published tree of %d", index, size, cp.Size)
	}
	pb, err := client.NewProofBuilder(ctx, size, t.tiles(cp.Size))
	if err != nil {
		return nil, err
	}
	return pb.InclusionProof(ctx, index)
}

// ConsistencyProof proves the tree of size old is a prefix of cp's.
func (t *Tree) ConsistencyProof(ctx context.Context, cp *Checkpoint, old uint64) ([][]byte, error) {
	if old > cp.Size {
		return nil, fmt.Errorf("size %d is beyond the published tree (%d)", old, cp.Size)
	}
	if old == 0 || old == cp.Size {
		return nil, nil
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, t.tiles(cp.Size))
	if err != nil {
		return nil, err
	}
	return pb.ConsistencyProof(ctx, old, cp.Size)
}

// VerifyConsistent checks that (size, root) is a prefix of cp's tree with a
// consistency proof read from the log.
func (t *Tree) VerifyConsistent(ctx context.Context, cp *Checkpoint, size uint64, root []byte) error {
	if size > cp.Size {
		return fmt.Errorf("the log's tree has %d entries, fewer than the %d anchored: the log went backwards or the anchor is not of this log", cp.Size, size)
	}
	if size == cp.Size {
		if !bytes.Equal(root, cp.Root) {
			return fmt.Errorf("root for size %d differs from the log's checkpoint of the same size", size)
		}
		return nil
	}
	p, err := t.ConsistencyProof(ctx, cp, size)
	if err != nil {
		return fmt.Errorf("read consistency proof %d..%d: %w", size, cp.Size, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size, cp.Size, p, root, cp.Root); err != nil {
		return fmt.Errorf("tree (%d, %x) is not a prefix of the log's tree (%d, %x): %w", size, root, cp.Size, cp.Root, err)
	}
	return nil
}

// Entry reads the entry at index from the tree cp.
func (t *Tree) Entry(ctx context.Context, cp *Checkpoint, index uint64) ([]byte, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("index %d is beyond the published tree (%d)", index, cp.Size)
	}
	b, err := client.GetEntryBundle(ctx, t.src.ReadEntryBundle, index/layout.EntryBundleWidth, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("read entry bundle of %d: %w", index, err)
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("entry bundle of %d is short", index)
	}
	return b.Entries[i], nil
}
