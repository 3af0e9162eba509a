// Package history is the verifiable per-agent and per-correlation-id
// history of a ztlog evidence log (spec: history.md): the index (a
// deterministic function of a log prefix), its map tree and signed index
// checkpoint, the multi-leaf inclusion proof, the /v1/history answer and
// its verification. Verification is pure: bytes in, verdict out.
package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Key prefixes (history.md, "Keys").
const (
	AgentPrefix       = "agent:"
	CorrelationPrefix = "corr:"
)

// AgentKey is the key of the entries of the agent with the SPIFFE ID id.
func AgentKey(id string) string { return AgentPrefix + id }

// CorrelationKey is the key of the entries carrying correlation id c.
func CorrelationKey(c string) string { return CorrelationPrefix + c }

// KeyHash is SHA-256 of the key.
func KeyHash(key string) Hash { return sha256.Sum256([]byte(key)) }

// ChainValue extends a key's value hash by one entry (history.md, "Value
// hash"); the chain starts from 32 zero bytes.
func ChainValue(v Hash, index uint64, leafHash Hash) Hash {
	var buf [32 + 8 + 32]byte
	copy(buf[:32], v[:])
	binary.BigEndian.PutUint64(buf[32:40], index)
	copy(buf[40:], leafHash[:])
	return sha256.Sum256(buf[:])
}

// MapLeaf is one key's leaf of the map tree.
type MapLeaf struct {
	KeyHash   Hash
	Count     uint64
	ValueHash Hash
}

// Bytes is the 72-byte map leaf: key hash, count (big-endian), value hash.
func (m MapLeaf) Bytes() []byte {
	b := make([]byte, 0, 72)
	b = append(b, m.KeyHash[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Count)
	return append(b, m.ValueHash[:]...)
}

// LeafHash is the RFC 6962 leaf hash of the map leaf.
func (m MapLeaf) LeafHash() Hash {
	var h Hash
	copy(h[:], hasher.HashLeaf(m.Bytes()))
	return h
}

// Keys returns the keys entry e, at log index i, belongs to (history.md,
// "Keys"). actorOf returns the actor of the decision at an earlier index
// ("" if that entry is not a decision).
func Keys(e entry.Entry, i uint64, actorOf func(uint64) string) []string {
	switch x := e.(type) {
	case *entry.Decision:
		return []string{AgentKey(x.Actor), CorrelationKey(x.CorrelationID)}
	case *entry.Agent:
		return []string{AgentKey(x.ID), CorrelationKey(x.CorrelationID)}
	case *entry.Result:
		keys := []string{CorrelationKey(x.CorrelationID)}
		if x.DecisionIndex < i {
			if a := actorOf(x.DecisionIndex); a != "" {
				keys = append([]string{AgentKey(a)}, keys...)
			}
		}
		return keys
	}
	return nil
}

type keyState struct {
	key   string
	count uint64
	value Hash
	// indices are the key's log indices (kept when Options.KeepIndices).
	indices []uint64
}

// Index is the history index of a log prefix, built by applying the
// log's entries in order. It is not safe for concurrent use.
type Index struct {
	keepIndices bool
	keepTree    bool
	size        uint64
	keys        map[Hash]*keyState
	// actors[i] is 1 + the actor number of the decision at index i, 0 for
	// any other entry; actorNames[n] is actor n's SPIFFE ID.
	actors     []uint32
	actorNames []string
	actorNum   map[string]uint32
	log        levels
	rng        *compact.Range // the log's root as entries are applied
	dirty      bool
	snap       *Snapshot
	// changed are the keys added or extended since the last snapshot.
	changed map[Hash]struct{}
}

// Options choose what an Index keeps beyond the map itself.
type Options struct {
	// KeepIndices keeps every key's list of log indices (a server answering
	// queries needs them; an auditor recomputing the root does not).
	KeepIndices bool
	// KeepTree keeps the log's Merkle tree (every node, 64 bytes per entry)
	// to build multi-leaf inclusion proofs.
	KeepTree bool
}

// New returns the index of the empty log.
func New(opts Options) *Index {
	return &Index{keepIndices: opts.KeepIndices, keepTree: opts.KeepTree,
		keys: map[Hash]*keyState{}, actorNum: map[string]uint32{}, dirty: true, changed: map[Hash]struct{}{},
		rng: (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(0)}
}

// Size is the number of log entries applied.
func (x *Index) Size() uint64 { return x.size }

// Apply applies the entry at the next index: leaf is its bytes. An entry
// that does not parse belongs to no key.
func (x *Index) Apply(leaf []byte) {
	var lh Hash
	copy(lh[:], hasher.HashLeaf(leaf))
	e, err := entry.Parse(leaf)
	if err != nil {
		e = nil
	}
	x.ApplyParsed(lh, e)
}

// ApplyParsed applies the entry at the next index given its leaf hash and
// parsed entry (nil when it did not parse).
func (x *Index) ApplyParsed(leafHash Hash, e entry.Entry) {
	i := x.size
	x.size++
	if x.keepTree {
		x.log.add(leafHash)
	}
	_ = x.rng.Append(leafHash[:], nil) // never fails appending at the end
	var actor uint32
	if d, ok := e.(*entry.Decision); ok {
		n, ok := x.actorNum[d.Actor]
		if !ok {
			n = uint32(len(x.actorNames))
			x.actorNames = append(x.actorNames, d.Actor)
			x.actorNum[d.Actor] = n
		}
		actor = n + 1
	}
	x.actors = append(x.actors, actor)
	if e == nil {
		return
	}
	for _, k := range Keys(e, i, x.actorAt) {
		kh := KeyHash(k)
		s := x.keys[kh]
		if s == nil {
			s = &keyState{key: k}
			x.keys[kh] = s
		}
		s.count++
		s.value = ChainValue(s.value, i, leafHash)
		x.changed[kh] = struct{}{}
		if x.keepIndices {
			s.indices = append(s.indices, i)
		}
	}
	x.dirty = true
}

func (x *Index) actorAt(i uint64) string {
	if i >= uint64(len(x.actors)) || x.actors[i] == 0 {
		return ""
	}
	return x.actorNames[x.actors[i]-1]
}

// Snapshot is the map tree at one log size: immutable once made.
type Snapshot struct {
	// Size is the log size the map is for.
	Size uint64
	// Leaves are the map leaves sorted by key hash.
	Leaves []MapLeaf
	tree   levels
}

// MapSize is the number of keys.
func (s *Snapshot) MapSize() uint64 { return uint64(len(s.Leaves)) }

// Root is the map root.
func (s *Snapshot) Root() Hash { return s.tree.root(uint64(len(s.Leaves))) }

// Snapshot returns the map at the current size. Only what changed since
// the last snapshot is recomputed: the leaves of the keys added or
// extended, merged into the sorted list, then the tree's inner nodes.
func (x *Index) Snapshot() *Snapshot {
	if !x.dirty && x.snap != nil {
		if x.snap.Size != x.size {
			s := *x.snap
			s.Size = x.size
			x.snap = &s
		}
		return x.snap
	}
	var old []MapLeaf
	var oldHashes []Hash
	if x.snap != nil && len(x.snap.tree) > 0 {
		old, oldHashes = x.snap.Leaves, x.snap.tree[0]
	}
	var added []Hash
	for kh := range x.changed {
		if _, ok := slices.BinarySearchFunc(old, kh, cmpLeafKey); !ok {
			added = append(added, kh)
		}
	}
	slices.SortFunc(added, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	leaves := make([]MapLeaf, 0, len(old)+len(added))
	hashes := make([]Hash, 0, len(old)+len(added))
	take := func(kh Hash) {
		st := x.keys[kh]
		l := MapLeaf{KeyHash: kh, Count: st.count, ValueHash: st.value}
		leaves, hashes = append(leaves, l), append(hashes, l.LeafHash())
	}
	i, j := 0, 0
	for i < len(old) || j < len(added) {
		switch {
		case j < len(added) && (i == len(old) || bytes.Compare(added[j][:], old[i].KeyHash[:]) < 0):
			take(added[j])
			j++
		default:
			if _, ch := x.changed[old[i].KeyHash]; ch {
				take(old[i].KeyHash)
			} else {
				leaves, hashes = append(leaves, old[i]), append(hashes, oldHashes[i])
			}
			i++
		}
	}
	t := buildLevels(hashes)
	x.snap = &Snapshot{Size: x.size, Leaves: leaves, tree: t}
	x.dirty = false
	clear(x.changed)
	return x.snap
}

func cmpLeafKey(l MapLeaf, k Hash) int { return bytes.Compare(l.KeyHash[:], k[:]) }

// Find returns the position of the key hash in the snapshot, and whether
// it is there; when it is not, the position is where it would go.
func (s *Snapshot) Find(kh Hash) (uint64, bool) {
	p, ok := slices.BinarySearchFunc(s.Leaves, kh, cmpLeafKey)
	return uint64(p), ok
}

// LeafProof proves one map leaf in the map tree.
type LeafProof struct {
	Position  uint64   `json:"position"`
	KeyHash   []byte   `json:"key_hash"`
	Count     uint64   `json:"count"`
	ValueHash []byte   `json:"value_hash"`
	Path      [][]byte `json:"path"`
}

// Absence proves a key is not in the map: the adjacent leaves around it.
type Absence struct {
	Left  *LeafProof `json:"left,omitempty"`
	Right *LeafProof `json:"right,omitempty"`
}

func (s *Snapshot) leafProof(p uint64) *LeafProof {
	l := s.Leaves[p]
	path := s.tree.inclusion(p, uint64(len(s.Leaves)))
	if path == nil {
		path = [][]byte{}
	}
	return &LeafProof{Position: p, KeyHash: l.KeyHash[:], Count: l.Count, ValueHash: l.ValueHash[:], Path: path}
}

// Prove returns the membership proof of key, or its absence proof.
func (s *Snapshot) Prove(key string) (*LeafProof, *Absence) {
	p, ok := s.Find(KeyHash(key))
	if ok {
		return s.leafProof(p), nil
	}
	a := &Absence{}
	if p > 0 {
		a.Left = s.leafProof(p - 1)
	}
	if p < uint64(len(s.Leaves)) {
		a.Right = s.leafProof(p)
	}
	return nil, a
}

// Indices returns the log indices of key's entries up to the snapshot's
// size (Options.KeepIndices), in increasing order.
func (x *Index) Indices(key string, s *Snapshot) []uint64 {
	st := x.keys[KeyHash(key)]
	if st == nil {
		return nil
	}
	n := cut(st.indices, s.Size)
	return slices.Clone(st.indices[:n])
}

// Root is the log's root at the size applied.
func (x *Index) Root() Hash {
	if x.size == 0 {
		return emptyRoot
	}
	var h Hash
	r, _ := x.rng.GetRootHash(nil) // never fails on a range from 0
	copy(h[:], r)
	return h
}

// LogRoot is the log's root at size n (Options.KeepTree).
func (x *Index) LogRoot(n uint64) Hash { return x.log.root(n) }

// LogProof is the multi-leaf inclusion proof of the sorted indices in the
// log tree of size n (Options.KeepTree); empty for no index.
func (x *Index) LogProof(indices []uint64, n uint64) [][]byte {
	if len(indices) == 0 {
		return [][]byte{}
	}
	return x.log.multiProof(indices, n)
}

// LeafHashAt is the log's leaf hash at index i (Options.KeepTree).
func (x *Index) LeafHashAt(i uint64) Hash { return x.log[0][i] }

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// IndexCheckpoint is the unsigned index checkpoint of the snapshot
// (Options.KeepTree, for the log root).
func (x *Index) IndexCheckpoint(origin string, s *Snapshot) IndexCheckpoint {
	return IndexCheckpoint{Origin: origin, Size: s.Size, LogRoot: x.LogRoot(s.Size), MapSize: s.MapSize(), MapRoot: s.Root()}
}

// Answer assembles the answer for key at the snapshot (Options.KeepIndices
// and KeepTree): checkpoint is the log's signed checkpoint of the
// snapshot's size, indexCheckpoint the signed index checkpoint, leaves
// reads the entries at the given indices.
func (x *Index) Answer(key string, s *Snapshot, checkpoint, indexCheckpoint []byte, leaves func([]uint64) ([][]byte, error)) (*Answer, error) {
	a := &Answer{V: Version, Key: key, Size: s.Size, Checkpoint: string(checkpoint), IndexCheckpoint: string(indexCheckpoint),
		Entries: []Item{}, LogProof: [][]byte{}}
	a.Membership, a.Absence = s.Prove(key)
	if a.Membership == nil {
		return a, nil
	}
	idx := x.Indices(key, s)
	ls, err := leaves(idx)
	if err != nil {
		return nil, err
	}
	if len(ls) != len(idx) {
		return nil, fmt.Errorf("read %d entries, want %d", len(ls), len(idx))
	}
	for k, i := range idx {
		if leafHash(ls[k]) != x.LeafHashAt(i) {
			return nil, fmt.Errorf("the entry read at index %d does not have the leaf hash indexed", i)
		}
		a.Entries = append(a.Entries, Item{Index: i, Leaf: ls[k]})
	}
	a.LogProof = x.LogProof(idx, s.Size)
	return a, nil
}
