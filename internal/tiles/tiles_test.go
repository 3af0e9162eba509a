package tiles

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// tile is a tile of n distinct hashes.
func tile(n int) []byte {
	b := make([]byte, n*hashSize)
	for i := range b {
		b[i] = byte(i / hashSize)
	}
	return b
}

// published is a log of 256+5 entries: one full level-0 tile and a partial
// one of 5 hashes. read records the width it was asked for.
func published(asked *[]uint8) readFunc {
	return func(_ context.Context, level, index uint64, p uint8) ([]byte, error) {
		*asked = append(*asked, p)
		if level != 0 || index > 1 {
			return nil, errors.New("no such tile")
		}
		if index == 0 {
			return tile(256), nil
		}
		return tile(5), nil
	}
}

type readFunc = func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)

func TestFetcherReadsThePublishedWidth(t *testing.T) {
	var asked []uint8
	f := Fetcher(published(&asked), 256+5)
	if _, err := f(context.Background(), 0, 1, 3); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 {
		t.Fatalf("read %d times, want 1", len(asked))
	}
	if asked[0] != 5 {
		t.Errorf("read the partial tile at width %d, want the published width 5", asked[0])
	}
}

func TestFetcherCutsToTheWidthAskedFor(t *testing.T) {
	var asked []uint8
	got, err := Fetcher(published(&asked), 256+5)(context.Background(), 0, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tile(5)[:3*hashSize]) {
		t.Errorf("got %d bytes, want the first 3 hashes of the published tile", len(got))
	}
}

func TestFetcherReadsAFullTileInFull(t *testing.T) {
	var asked []uint8
	got, err := Fetcher(published(&asked), 256+5)(context.Background(), 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if asked[0] != 0 {
		t.Errorf("read the full tile at width %d, want 0 (full)", asked[0])
	}
	if len(got) != 256*hashSize {
		t.Errorf("got %d bytes, want a full tile of %d", len(got), 256*hashSize)
	}
}

func TestFetcherFullTileCutForAnOlderTree(t *testing.T) {
	var asked []uint8
	got, err := Fetcher(published(&asked), 256+5)(context.Background(), 0, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tile(256)[:7*hashSize]) {
		t.Errorf("got %d bytes, want the first 7 hashes of the full tile", len(got))
	}
}

func TestFetcherReturnsReadErrors(t *testing.T) {
	var asked []uint8
	_, err := Fetcher(published(&asked), 256+5)(context.Background(), 1, 0, 0)
	if err == nil || err.Error() != "no such tile" {
		t.Errorf("error %v, want the reader's own", err)
	}
}
