package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/jsonx"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// Version is the answer format version.
const Version = 1

// Answer is the body of GET /v1/history (history.md).
type Answer struct {
	V               int        `json:"v"`
	Key             string     `json:"key"`
	Size            uint64     `json:"size"`
	Checkpoint      string     `json:"checkpoint"`
	IndexCheckpoint string     `json:"index_checkpoint"`
	Membership      *LeafProof `json:"membership,omitempty"`
	Absence         *Absence   `json:"absence,omitempty"`
	Entries         []Item     `json:"entries"`
	LogProof        [][]byte   `json:"log_proof"`
}

// Item is one entry of an answer: its log index and exact bytes.
type Item struct {
	Index uint64 `json:"index"`
	Leaf  []byte `json:"leaf"`
}

// Outcomes of Verify, wrapped with the detail; test with errors.Is.
var (
	// ErrMalformed: the answer or the index checkpoint is not in the format.
	ErrMalformed = errors.New("malformed history answer")
	// ErrCheckpoint: the log checkpoint does not verify under the trust
	// policy, or is not for the answer's size.
	ErrCheckpoint = errors.New("log checkpoint does not verify")
	// ErrIndexSignature: the index checkpoint's signature does not verify
	// with the log's key.
	ErrIndexSignature = errors.New("index checkpoint signature does not verify")
	// ErrIndexMismatch: the index checkpoint is for another log, size or root.
	ErrIndexMismatch = errors.New("index checkpoint does not match the log checkpoint")
	// ErrMapProof: the key's membership or absence is not proven by the map root.
	ErrMapProof = errors.New("map proof does not verify")
	// ErrIncomplete: the entries are not exactly the key's committed list
	// (one missing, added, changed or out of order).
	ErrIncomplete = errors.New("entries are not the key's committed list")
	// ErrLogProof: the entries are not proven in the log at the size.
	ErrLogProof = errors.New("entries are not proven in the log")
	// ErrNotTheKeys: an entry does not belong to the key asked for.
	ErrNotTheKeys = errors.New("an entry does not belong to the key")
)

// ParseAnswer decodes an answer strictly (one JSON object, no unknown
// member, version 1).
func ParseAnswer(raw []byte) (*Answer, error) {
	var a Answer
	if err := jsonx.DecodeStrict(raw, &a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if a.V != Version {
		return nil, fmt.Errorf("%w: v=%d, this reader knows v=%d", ErrMalformed, a.V, Version)
	}
	if (a.Membership == nil) == (a.Absence == nil) {
		return nil, fmt.Errorf("%w: want exactly one of membership and absence", ErrMalformed)
	}
	for _, p := range []*LeafProof{a.Membership, absenceSide(a.Absence, true), absenceSide(a.Absence, false)} {
		if p == nil {
			continue
		}
		if len(p.KeyHash) != 32 || len(p.ValueHash) != 32 {
			return nil, fmt.Errorf("%w: a map leaf's key_hash and value_hash must be 32 bytes", ErrMalformed)
		}
	}
	return &a, nil
}

func absenceSide(a *Absence, left bool) *LeafProof {
	if a == nil {
		return nil
	}
	if left {
		return a.Left
	}
	return a.Right
}

// Verified is one entry of a verified history.
type Verified struct {
	Index uint64
	Leaf  []byte
	Entry entry.Entry
}

// History is a verified answer.
type History struct {
	Key        string
	Checkpoint *trustpolicy.Checkpoint
	Index      IndexCheckpoint
	Entries    []Verified
}

// Verify verifies a /v1/history answer for key under the trust policy
// (history.md, "Verification"). now, when non-zero, is the verifier's
// clock for cosignature timestamps.
func Verify(raw []byte, key string, pol *trustpolicy.Policy, now time.Time) (*History, error) {
	a, err := ParseAnswer(raw)
	if err != nil {
		return nil, err
	}
	cp, err := pol.VerifyCheckpoint([]byte(a.Checkpoint), trustpolicy.VerifyOptions{Now: now})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if cp.Size != a.Size {
		return nil, fmt.Errorf("%w: the checkpoint is for size %d, the answer for size %d", ErrCheckpoint, cp.Size, a.Size)
	}
	ic, err := OpenIndexCheckpoint([]byte(a.IndexCheckpoint), cp.Log.Verifier)
	if err != nil {
		return nil, err
	}
	switch {
	case ic.Origin != cp.Origin:
		return nil, fmt.Errorf("%w: index checkpoint for %q, log checkpoint for %q", ErrIndexMismatch, ic.Origin, cp.Origin)
	case ic.Size != cp.Size:
		return nil, fmt.Errorf("%w: index checkpoint for size %d, log checkpoint for size %d", ErrIndexMismatch, ic.Size, cp.Size)
	case !bytes.Equal(ic.LogRoot[:], cp.Hash):
		return nil, fmt.Errorf("%w: index checkpoint names log root %s, the log checkpoint %s", ErrIndexMismatch, b64(ic.LogRoot[:]), b64(cp.Hash))
	}
	if a.Key != key {
		return nil, fmt.Errorf("%w: the answer is for key %q, not %q", ErrMalformed, a.Key, key)
	}
	h := &History{Key: key, Checkpoint: cp, Index: ic}
	if a.Absence != nil {
		if err := verifyAbsence(ic, KeyHash(key), a.Absence); err != nil {
			return nil, err
		}
		if len(a.Entries) != 0 || len(a.LogProof) != 0 {
			return nil, fmt.Errorf("%w: the key is absent from the map, yet the answer lists %d entries", ErrIncomplete, len(a.Entries))
		}
		return h, nil
	}
	leaf, err := verifyMembership(ic, KeyHash(key), a.Membership)
	if err != nil {
		return nil, err
	}
	indices, hashes, err := checkChain(a.Entries, leaf, cp.Size)
	if err != nil {
		return nil, err
	}
	root, err := MultiRoot(cp.Size, indices, hashes, a.LogProof)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogProof, err)
	}
	if !bytes.Equal(root[:], cp.Hash) {
		return nil, fmt.Errorf("%w: the entries and log_proof hash to root %s, the checkpoint says %s", ErrLogProof, b64(root[:]), b64(cp.Hash))
	}
	if h.Entries, err = checkBelong(key, a.Entries); err != nil {
		return nil, err
	}
	return h, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// mapLeafOf checks a leaf proof's path against the map root.
func mapLeafOf(ic IndexCheckpoint, p *LeafProof) (MapLeaf, error) {
	var l MapLeaf
	copy(l.KeyHash[:], p.KeyHash)
	copy(l.ValueHash[:], p.ValueHash)
	l.Count = p.Count
	lh := l.LeafHash()
	if err := proof.VerifyInclusion(hasher, p.Position, ic.MapSize, lh[:], p.Path, ic.MapRoot[:]); err != nil {
		return l, fmt.Errorf("%w: map leaf at position %d of %d: %w", ErrMapProof, p.Position, ic.MapSize, err)
	}
	return l, nil
}

func verifyMembership(ic IndexCheckpoint, kh Hash, p *LeafProof) (MapLeaf, error) {
	if !bytes.Equal(p.KeyHash, kh[:]) {
		return MapLeaf{}, fmt.Errorf("%w: the membership proof is for key hash %s, the key's is %s", ErrMapProof, b64(p.KeyHash), b64(kh[:]))
	}
	l, err := mapLeafOf(ic, p)
	if err == nil && l.Count == 0 {
		err = fmt.Errorf("%w: a map leaf with count 0", ErrMapProof)
	}
	return l, err
}

func verifyAbsence(ic IndexCheckpoint, kh Hash, a *Absence) error {
	if a.Left == nil && a.Right == nil {
		if ic.MapSize != 0 || ic.MapRoot != emptyRoot {
			return fmt.Errorf("%w: no neighbour given, but the map has %d keys", ErrMapProof, ic.MapSize)
		}
		return nil
	}
	if a.Left != nil {
		l, err := mapLeafOf(ic, a.Left)
		if err != nil {
			return err
		}
		if bytes.Compare(l.KeyHash[:], kh[:]) >= 0 {
			return fmt.Errorf("%w: the left neighbour's key hash is not below the key's", ErrMapProof)
		}
		if a.Right == nil && a.Left.Position != ic.MapSize-1 {
			return fmt.Errorf("%w: only a left neighbour, at position %d, but the map's last is %d", ErrMapProof, a.Left.Position, ic.MapSize-1)
		}
	}
	if a.Right != nil {
		r, err := mapLeafOf(ic, a.Right)
		if err != nil {
			return err
		}
		if bytes.Compare(r.KeyHash[:], kh[:]) <= 0 {
			return fmt.Errorf("%w: the right neighbour's key hash is not above the key's", ErrMapProof)
		}
		if a.Left == nil && a.Right.Position != 0 {
			return fmt.Errorf("%w: only a right neighbour, at position %d, not 0", ErrMapProof, a.Right.Position)
		}
	}
	if a.Left != nil && a.Right != nil && a.Right.Position != a.Left.Position+1 {
		return fmt.Errorf("%w: neighbours at positions %d and %d are not adjacent", ErrMapProof, a.Left.Position, a.Right.Position)
	}
	return nil
}

// checkChain checks the entries against the map leaf: their count, order
// and the value hash chain.
func checkChain(items []Item, leaf MapLeaf, size uint64) ([]uint64, []Hash, error) {
	if uint64(len(items)) != leaf.Count {
		return nil, nil, fmt.Errorf("%w: %d entries, the index commits to %d", ErrIncomplete, len(items), leaf.Count)
	}
	indices := make([]uint64, len(items))
	hashes := make([]Hash, len(items))
	var v Hash
	for k, it := range items {
		if k > 0 && it.Index <= items[k-1].Index {
			return nil, nil, fmt.Errorf("%w: entry %d follows entry %d: not in increasing index order", ErrIncomplete, it.Index, items[k-1].Index)
		}
		if it.Index >= size {
			return nil, nil, fmt.Errorf("%w: entry %d is not below the size %d", ErrIncomplete, it.Index, size)
		}
		indices[k] = it.Index
		hashes[k] = leafHash(it.Leaf)
		v = ChainValue(v, it.Index, hashes[k])
	}
	if v != leaf.ValueHash {
		return nil, nil, fmt.Errorf("%w: the entries chain to %s, the index commits to %s", ErrIncomplete, b64(v[:]), b64(leaf.ValueHash[:]))
	}
	return indices, hashes, nil
}

func leafHash(leaf []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out Hash
	h.Sum(out[:0])
	return out
}

// checkBelong parses every entry and checks it belongs to key.
func checkBelong(key string, items []Item) ([]Verified, error) {
	out := make([]Verified, len(items))
	pos := map[uint64]int{}
	for k, it := range items {
		e, err := entry.Parse(it.Leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d does not parse: %w", ErrNotTheKeys, it.Index, err)
		}
		out[k] = Verified{Index: it.Index, Leaf: it.Leaf, Entry: e}
		pos[it.Index] = k
		actorOf := func(i uint64) string {
			if j, ok := pos[i]; ok {
				if d, ok := out[j].Entry.(*entry.Decision); ok {
					return d.Actor
				}
			}
			return ""
		}
		keys := Keys(e, it.Index, actorOf)
		found := false
		for _, kk := range keys {
			found = found || kk == key
		}
		if !found {
			return nil, fmt.Errorf("%w: entry %d (%s) belongs to %v, not to %q", ErrNotTheKeys, it.Index, e.EntryKind(), keys, key)
		}
	}
	return out, nil
}
