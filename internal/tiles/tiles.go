// Package tiles reads the tiles of a C2SP tlog-tiles log for proofs in a
// tree older than the published one.
//
// Storage keeps the partial tiles of published tree sizes only (an older
// size may fall inside a batch), so a tile of an older tree is read at its
// width in the published tree, or full, and cut to the width asked for:
// tiles only ever grow by appending hashes.
package tiles

import (
	"context"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// hashSize is the size of one hash in a tile (SHA-256).
const hashSize = 32

// Fetcher returns a tile fetcher for proofs in any tree no larger than
// published, reading the published tiles through read (a log's ReadTile).
// Errors from read are returned as they are.
func Fetcher(read client.TileFetcherFunc, published uint64) client.TileFetcherFunc {
	return func(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
		t, err := read(ctx, level, index, layout.PartialTileSize(level, index, published))
		if err != nil {
			return nil, err
		}
		if p > 0 && len(t) > int(p)*hashSize {
			t = t[:int(p)*hashSize]
		}
		return t, nil
	}
}
