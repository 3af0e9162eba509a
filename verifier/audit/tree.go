package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
)

var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is RFC 6962's interior node hash, SHA-256(0x01 || l || r),
// written to allocate only its result (the replay computes one per leaf;
// rfc6962.Hasher allocates a digest and a buffer each time). Tested equal.
func hashChildren(l, r []byte) []byte {
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+sha256.Size:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// tree recomputes a C2SP tlog-tiles tree from its leaf hashes, one leaf at
// a time, in memory bounded by the tree height: a compact range for the
// root and, for each tile level, the hashes of the tile being filled. When
// a tile fills up, full is called with its hashes so that the caller can
// compare them with the log's tile.
type tree struct {
	rng *compact.Range
	// tiles[L] is the concatenated hashes of the incomplete tile at tile
	// level L: the completed nodes at tree level 8L since the last full tile.
	tiles [][]byte
	full  func(level, index uint64, hashes []byte) error
	err   error
}

func newTree(full func(level, index uint64, hashes []byte) error) *tree {
	return &tree{rng: rangeFactory.NewEmptyRange(0), full: full}
}

func (t *tree) size() uint64 { return t.rng.End() }

func (t *tree) visit(id compact.NodeID, hash []byte) {
	if id.Level%layout.TileHeight != 0 || t.err != nil {
		return
	}
	level := uint64(id.Level / layout.TileHeight)
	for uint64(len(t.tiles)) <= level {
		t.tiles = append(t.tiles, make([]byte, 0, layout.TileWidth*32))
	}
	pos := id.Index % layout.TileWidth
	if uint64(len(t.tiles[level])) != pos*32 {
		t.err = fmt.Errorf("internal: tile level %d at node %d holds %d hashes", level, id.Index, len(t.tiles[level])/32)
		return
	}
	t.tiles[level] = append(t.tiles[level], hash...)
	if pos == layout.TileWidth-1 {
		if err := t.full(level, id.Index/layout.TileWidth, t.tiles[level]); err != nil {
			t.err = err
		}
		t.tiles[level] = t.tiles[level][:0]
	}
}

// append adds the next leaf hash.
func (t *tree) append(leafHash []byte) error {
	if err := t.rng.Append(leafHash, t.visit); err != nil {
		return err
	}
	return t.err
}

// root is the root hash of the tree so far.
func (t *tree) root() []byte {
	if t.rng.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	h, _ := t.rng.GetRootHash(nil)
	return h
}

// partial calls f for every incomplete tile: its level, index and hashes.
func (t *tree) partial(f func(level, index uint64, hashes []byte) error) error {
	for level, hashes := range t.tiles {
		if len(hashes) == 0 {
			continue
		}
		index := (t.size() >> (uint64(level) * layout.TileHeight)) / layout.TileWidth
		if err := f(uint64(level), index, hashes); err != nil {
			return err
		}
	}
	return nil
}

// treeState is the tree's resumable state.
type treeState struct {
	Size  uint64   `json:"size"`
	Range [][]byte `json:"range"`
	Tiles [][]byte `json:"tiles"`
}

func (t *tree) state() treeState {
	s := treeState{Size: t.size(), Range: t.rng.Hashes()}
	for _, h := range t.tiles {
		s.Tiles = append(s.Tiles, append([]byte(nil), h...))
	}
	return s
}

func (t *tree) restore(s treeState) error {
	r, err := rangeFactory.NewRange(0, s.Size, s.Range)
	if err != nil {
		return err
	}
	for level, h := range s.Tiles {
		want := (s.Size >> (uint64(level) * layout.TileHeight)) % layout.TileWidth
		if uint64(len(h)) != want*32 {
			return fmt.Errorf("tile level %d holds %d bytes, want %d hashes", level, len(h), want)
		}
	}
	t.rng, t.tiles = r, s.Tiles
	return nil
}

// sameHashes compares a tile from the log with the recomputed hashes; the
// log's tile may be longer (a full tile where a partial one was asked for:
// tiles only grow by appending), never shorter.
func sameHashes(fromLog, recomputed []byte) (bool, string) {
	if len(fromLog)%32 != 0 {
		return false, fmt.Sprintf("the log's tile is %d bytes, not a multiple of 32", len(fromLog))
	}
	if len(fromLog) < len(recomputed) {
		return false, fmt.Sprintf("the log's tile has %d hashes, the tree needs %d", len(fromLog)/32, len(recomputed)/32)
	}
	for i := 0; i < len(recomputed); i += 32 {
		if !bytes.Equal(fromLog[i:i+32], recomputed[i:i+32]) {
			return false, fmt.Sprintf("hash %d is %s in the log's tile, %s recomputed from the entries", i/32,
				base64.StdEncoding.EncodeToString(fromLog[i:i+32]), base64.StdEncoding.EncodeToString(recomputed[i:i+32]))
		}
	}
	return true, ""
}
