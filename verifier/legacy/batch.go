package legacy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/zt-infra/ztlog/internal/jsonx"
)

// The earlier control plane anchored its records on the DAAL contract
// either one at a time (logAction(actor, 0x<current_hash>, metadata)) or in
// batches: logBatch("batch:<hostname>", root, metadata), where root is the
// BatchRoot of the batch's action hashes (each 0x<current_hash> of one
// record, in the order they were queued) and metadata is BatchMetadata as
// JSON. legacy.md ("logBatch anchors") specifies both.

// BatchAgentPrefix starts the agentId of every logBatch of the earlier
// control plane; the rest is the host name of the process that sent it.
const BatchAgentPrefix = "batch:"

// MaxBatchLeaves bounds the action hashes of one batch's metadata that a
// reader accepts (the control plane batched DAAL_BATCH_SIZE, 10 by
// default; a contract call's metadata is bounded by gas in any case).
const MaxBatchLeaves = 4096

// ErrBatchMetadata is wrapped by every ParseBatchMetadata error.
var ErrBatchMetadata = errors.New("not the earlier control plane's logBatch metadata")

// BatchMetadata is the metadata string of a logBatch anchor of the earlier
// control plane: {"count":N,"actionHashes":["0x<64 hex>",...],
// "queuedAt":["<ISO 8601 time>",...]}.
type BatchMetadata struct {
	// ActionHashes are the batch's leaves, in order: each is a record's
	// current_hash.
	ActionHashes [][32]byte
	// QueuedAt is when each record was queued for anchoring, as written.
	QueuedAt []string
}

type batchDocument struct {
	Count        *int      `json:"count"`
	ActionHashes *[]string `json:"actionHashes"`
	QueuedAt     *[]string `json:"queuedAt"`
}

// ParseBatchMetadata reads a logBatch metadata string. It requires exactly
// the three members, count equal to the number of action hashes and of
// queue times, at least one and at most MaxBatchLeaves hashes, and each
// hash written as 0x and 64 lowercase hex digits.
func ParseBatchMetadata(s string) (*BatchMetadata, error) {
	var d batchDocument
	if err := jsonx.DecodeStrict([]byte(s), &d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBatchMetadata, err)
	}
	switch {
	case d.Count == nil:
		return nil, fmt.Errorf("%w: member count is missing", ErrBatchMetadata)
	case d.ActionHashes == nil:
		return nil, fmt.Errorf("%w: member actionHashes is missing", ErrBatchMetadata)
	case d.QueuedAt == nil:
		return nil, fmt.Errorf("%w: member queuedAt is missing", ErrBatchMetadata)
	}
	n := len(*d.ActionHashes)
	if n == 0 || n > MaxBatchLeaves {
		return nil, fmt.Errorf("%w: %d action hashes, want 1 to %d", ErrBatchMetadata, n, MaxBatchLeaves)
	}
	if *d.Count != n {
		return nil, fmt.Errorf("%w: count is %d but there are %d action hashes", ErrBatchMetadata, *d.Count, n)
	}
	if len(*d.QueuedAt) != n {
		return nil, fmt.Errorf("%w: %d queue times for %d action hashes", ErrBatchMetadata, len(*d.QueuedAt), n)
	}
	m := &BatchMetadata{ActionHashes: make([][32]byte, n), QueuedAt: *d.QueuedAt}
	for i, h := range *d.ActionHashes {
		v, ok := strings.CutPrefix(h, "0x")
		if !ok || !isHash(v) {
			return nil, fmt.Errorf("%w: actionHashes[%d] %q is not 0x and 64 lowercase hex digits", ErrBatchMetadata, i, h)
		}
		hex.Decode(m.ActionHashes[i][:], []byte(v))
	}
	return m, nil
}

// BatchRoot is the earlier control plane's Merkle root of a batch: the
// leaves are the 32-byte action hashes themselves; each level hashes
// pairs, SHA-256(left || right), and an odd last node is paired with
// itself; the root of one leaf is that leaf. It is not RFC 6962's tree (no
// leaf or node prefixes, odd nodes duplicated rather than promoted).
func BatchRoot(leaves [][32]byte) ([32]byte, error) {
	if len(leaves) == 0 {
		return [32]byte{}, errors.New("legacy: the Merkle root of an empty batch is undefined")
	}
	level := append([][32]byte(nil), leaves...)
	var buf [64]byte
	for len(level) > 1 {
		next := level[:0:0]
		for i := 0; i < len(level); i += 2 {
			right := level[i]
			if i+1 < len(level) {
				right = level[i+1]
			}
			copy(buf[:32], level[i][:])
			copy(buf[32:], right[:])
			next = append(next, sha256.Sum256(buf[:]))
		}
		level = next
	}
	return level[0], nil
}
