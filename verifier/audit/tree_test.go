package audit

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

func TestHashesAreRFC6962(t *testing.T) {
	l, r := rfc6962.DefaultHasher.HashLeaf([]byte("l")), rfc6962.DefaultHasher.HashLeaf([]byte("r"))
	if !bytes.Equal(hashChildren(l, r), rfc6962.DefaultHasher.HashChildren(l, r)) {
		t.Fatal("hashChildren differs from RFC 6962")
	}
	var leaves []byte
	for i := range 256 {
		e := []byte(fmt.Sprintf("entry %d", i))
		leaves = append(leaves, byte(len(e)>>8), byte(len(e)))
		leaves = append(leaves, e...)
	}
	j := &bundleJob{first: 0, end: 256}
	j.load(context.Background(), bundleSource(leaves))
	for k, leaf := range j.leaves {
		if !bytes.Equal(j.hashes[k*32:k*32+32], rfc6962.DefaultHasher.HashLeaf(leaf)) {
			t.Fatalf("leaf %d hash differs from RFC 6962", k)
		}
	}
	if len(j.leaves) != 256 || j.bad != "" {
		t.Fatalf("%d leaves, %q", len(j.leaves), j.bad)
	}
}

// bundleSource serves one bundle and no tiles.
type bundleSource []byte

func (b bundleSource) ReadCheckpoint(context.Context) ([]byte, error) { return nil, nil }
func (b bundleSource) ReadTile(context.Context, uint64, uint64, uint8) ([]byte, error) {
	return nil, nil
}
func (b bundleSource) ReadEntryBundle(context.Context, uint64, uint8) ([]byte, error) {
	return b, nil
}
