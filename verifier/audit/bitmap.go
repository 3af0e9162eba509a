package audit

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// bitmap is a set of log indices, stored as 8 KiB chunks of 65536 bits
// allocated only when a bit in them is set: one bit per entry at most
// (128 KiB per million entries), nothing for ranges never touched.
type bitmap struct {
	chunks map[uint64]*[chunkWords]uint64
}

const (
	chunkBits  = 1 << 16
	chunkWords = chunkBits / 64
)

func newBitmap() *bitmap { return &bitmap{chunks: map[uint64]*[chunkWords]uint64{}} }

func (b *bitmap) has(i uint64) bool {
	c := b.chunks[i/chunkBits]
	if c == nil {
		return false
	}
	o := i % chunkBits
	return c[o/64]&(1<<(o%64)) != 0
}

func (b *bitmap) set(i uint64) {
	c := b.chunks[i/chunkBits]
	if c == nil {
		c = new([chunkWords]uint64)
		b.chunks[i/chunkBits] = c
	}
	o := i % chunkBits
	c[o/64] |= 1 << (o % 64)
}

// bitmapChunk is a saved chunk: its number and its bits, little-endian
// 64-bit words, without the trailing zero words.
type bitmapChunk struct {
	Chunk uint64 `json:"chunk"`
	Bits  []byte `json:"bits"`
}

func (b *bitmap) save() []bitmapChunk {
	keys := make([]uint64, 0, len(b.chunks))
	for k := range b.chunks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]bitmapChunk, 0, len(keys))
	for _, k := range keys {
		words := b.chunks[k][:]
		for len(words) > 0 && words[len(words)-1] == 0 {
			words = words[:len(words)-1]
		}
		bits := make([]byte, 0, 8*len(words))
		for _, w := range words {
			bits = binary.LittleEndian.AppendUint64(bits, w)
		}
		out = append(out, bitmapChunk{k, bits})
	}
	return out
}

func loadBitmap(chunks []bitmapChunk) (*bitmap, error) {
	b := newBitmap()
	for _, c := range chunks {
		if len(c.Bits) > chunkWords*8 || len(c.Bits)%8 != 0 {
			return nil, fmt.Errorf("bitmap chunk %d has %d bytes, want a multiple of 8 up to %d", c.Chunk, len(c.Bits), chunkWords*8)
		}
		if _, dup := b.chunks[c.Chunk]; dup {
			return nil, fmt.Errorf("bitmap chunk %d is listed twice", c.Chunk)
		}
		w := new([chunkWords]uint64)
		for i := range len(c.Bits) / 8 {
			w[i] = binary.LittleEndian.Uint64(c.Bits[i*8:])
		}
		b.chunks[c.Chunk] = w
	}
	return b, nil
}
