package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/internal/tiles"
)

// ReadCheckpoint returns the published checkpoint exactly as stored.
func (l *Log) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	raw, err := l.reader.ReadCheckpoint(ctx)
	return raw, mapReadErr(err)
}

// ReadTile returns the C2SP tlog-tiles tile at level and index; p is the
// width of a partial tile, 0 for a full one. A partial tile whose full tile
// has replaced it is served as the first p hashes of the full tile, which
// are the same bytes.
func (l *Log) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	t, err := l.reader.ReadTile(ctx, level, index, p)
	if err != nil {
		return nil, mapReadErr(err)
	}
	want := layout.TileWidth * 32
	if p > 0 {
		want = int(p) * 32
	}
	switch {
	case len(t) == want:
		return t, nil
	case p > 0 && len(t) > want && len(t)%32 == 0:
		return t[:want], nil
	default:
		return nil, fmt.Errorf("%w: tile %d/%d.p/%d has %d bytes, want %d", ErrStorage, level, index, p, len(t), want)
	}
}

// ReadEntryBundle returns the C2SP tlog-tiles entry bundle at index; p is the
// width of a partial bundle, 0 for a full one.
func (l *Log) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	b, err := l.reader.ReadEntryBundle(ctx, index, p)
	if err != nil {
		return nil, mapReadErr(err)
	}
	want := layout.EntryBundleWidth
	if p > 0 {
		want = int(p)
	}
	end, n, err := bundlePrefix(b, want)
	if err != nil || n < want {
		return nil, fmt.Errorf("%w: entry bundle %d.p/%d is malformed or short", ErrStorage, index, p)
	}
	return b[:end], nil
}

// bundlePrefix returns the byte length of the first want entries of an entry
// bundle and how many it found (fewer when the bundle is shorter).
func bundlePrefix(b []byte, want int) (end, n int, err error) {
	for n < want && end < len(b) {
		if len(b)-end < 2 {
			return 0, 0, errors.New("truncated length prefix")
		}
		size := int(binary.BigEndian.Uint16(b[end:]))
		if len(b)-end-2 < size {
			return 0, 0, errors.New("truncated entry")
		}
		end += 2 + size
		n++
	}
	return end, n, nil
}

// Entry returns the leaf at index and the published checkpoint it was read
// against. ErrNotFound if index is not below that checkpoint's size.
func (l *Log) Entry(ctx context.Context, index uint64) ([]byte, *Checkpoint, error) {
	cp, err := l.Checkpoint()
	if err != nil {
		return nil, nil, err
	}
	if index >= cp.Size {
		return nil, cp, fmt.Errorf("%w: index %d, published size %d", ErrNotFound, index, cp.Size)
	}
	leaf, err := l.entryAt(ctx, index, cp.Size)
	return leaf, cp, err
}

func (l *Log) entryAt(ctx context.Context, index, size uint64) ([]byte, error) {
	bundle, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, index/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, fmt.Errorf("%w: entry bundle for index %d: %w", ErrStorage, index, err)
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(bundle.Entries)) {
		return nil, fmt.Errorf("%w: entry bundle for index %d has only %d entries", ErrStorage, index, len(bundle.Entries))
	}
	return bundle.Entries[i], nil
}

// LeafHash is the RFC 6962 leaf hash of an entry.
func LeafHash(entry []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(entry) }

// InclusionProof proves the entry at index into the tree of the given size,
// which must not exceed the published checkpoint's.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	published, err := l.checkSize(size)
	if err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("%w: index %d is not in a tree of size %d", ErrNotFound, index, size)
	}
	pb, err := client.NewProofBuilder(ctx, size, l.tilesAt(published))
	if err != nil {
		return nil, fmt.Errorf("%w: proof builder: %w", ErrStorage, err)
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("%w: inclusion proof for %d in %d: %w", ErrStorage, index, size, err)
	}
	return p, nil
}

// ConsistencyProof proves the tree of size old is a prefix of the tree of
// size new; new must not exceed the published checkpoint's size.
func (l *Log) ConsistencyProof(ctx context.Context, old, new uint64) ([][]byte, error) {
	published, err := l.checkSize(new)
	if err != nil {
		return nil, err
	}
	if old > new {
		return nil, fmt.Errorf("%w: old size %d is larger than new size %d", ErrNotFound, old, new)
	}
	pb, err := client.NewProofBuilder(ctx, new, l.tilesAt(published))
	if err != nil {
		return nil, fmt.Errorf("%w: proof builder: %w", ErrStorage, err)
	}
	p, err := pb.ConsistencyProof(ctx, old, new)
	if err != nil {
		return nil, fmt.Errorf("%w: consistency proof %d..%d: %w", ErrStorage, old, new, err)
	}
	return p, nil
}

// checkSize returns the published size if size does not exceed it.
func (l *Log) checkSize(size uint64) (uint64, error) {
	cp, err := l.Checkpoint()
	if err != nil {
		return 0, err
	}
	if size > cp.Size {
		return 0, fmt.Errorf("%w: tree size %d, published size %d", ErrNotFound, size, cp.Size)
	}
	return cp.Size, nil
}

// tilesAt returns a tile fetcher for proofs in any tree no larger than the
// published size (see internal/tiles).
func (l *Log) tilesAt(published uint64) client.TileFetcherFunc {
	return tiles.Fetcher(l.reader.ReadTile, published)
}

func mapReadErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	default:
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
}

// IntegratedSize is the number of entries durably sequenced and integrated
// into the tree. It can be ahead of the published checkpoint (for example
// right after a restart); Await(IntegratedSize-1) waits for publication.
func (l *Log) IntegratedSize(ctx context.Context) (uint64, error) {
	n, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: integrated size: %w", ErrStorage, err)
	}
	return n, nil
}

// Scan calls fn with every entry in [start, end), in index order, reading
// whole entry bundles. end must not exceed the published checkpoint's size
// (ErrNotFound). fn's error stops the scan and is returned.
func (l *Log) Scan(ctx context.Context, start, end uint64, fn func(index uint64, leaf []byte) error) error {
	cp, err := l.Checkpoint()
	if err != nil {
		return err
	}
	if end > cp.Size {
		return fmt.Errorf("%w: scan to %d, published size %d", ErrNotFound, end, cp.Size)
	}
	for b := start / layout.EntryBundleWidth; b*layout.EntryBundleWidth < end; b++ {
		bundle, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, b, cp.Size)
		if err != nil {
			return fmt.Errorf("%w: entry bundle %d: %w", ErrStorage, b, err)
		}
		for j, e := range bundle.Entries {
			i := b*layout.EntryBundleWidth + uint64(j)
			if i < start {
				continue
			}
			if i >= end {
				break
			}
			if err := fn(i, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Replay calls fn for every entry integrated when it is called, in index
// order, once a published checkpoint covers them all (bounded by ctx): the
// way state kept beside the log (the agent registry, which decisions have a
// result) is rebuilt at start. Several such states are rebuilt in one pass
// by one fn.
func (l *Log) Replay(ctx context.Context, fn func(index uint64, leaf []byte) error) error {
	n, err := l.IntegratedSize(ctx)
	if err != nil || n == 0 {
		return err
	}
	if _, err := l.Await(ctx, n-1); err != nil {
		return fmt.Errorf("waiting for a checkpoint covering the log (%d entries): %w", n, err)
	}
	return l.Scan(ctx, 0, n, fn)
}
