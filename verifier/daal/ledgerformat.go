package daal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// State is where an anchor's transaction is.
type State string

// The anchor states. queued -> submitted -> confirmed is the normal path;
// submitted -> failed when the transaction reverts or its nonce is taken by
// another transaction; confirmed -> submitted when a reorg drops the block
// that held it (the same signed transaction is broadcast again).
const (
	// Queued: the checkpoint is chosen and recorded; no transaction yet.
	Queued State = "queued"
	// Submitted: a signed transaction (nonce, hash, raw bytes) is recorded
	// and has been, or is being, broadcast; replacements with higher fees
	// share its nonce, so at most one of them can ever be mined.
	Submitted State = "submitted"
	// Confirmed: the transaction is mined with status 1 and at least the
	// configured number of confirmations.
	Confirmed State = "confirmed"
	// Failed: the transaction was mined with status 0, or can never be.
	Failed State = "failed"
)

// Attestation is the reconciliation verdict on an anchor.
type Attestation string

// The attestation statuses.
const (
	// Pending: not reconciled yet (or re-opened by a reorg).
	Pending Attestation = "pending"
	// Verified: receipt status 1, sent to the configured contract by our
	// sender, its ActionLogged event carries our origin, root and metadata,
	// and the anchored tree is consistent with the log's current tree.
	Verified Attestation = "verified"
	// AttestFailed: one of those checks failed; Anchor.Reason says which.
	AttestFailed Attestation = "failed"
)

// Anchor is one checkpoint anchoring, as recorded in the ledger.
type Anchor struct {
	// ID numbers the ledger's anchors from 1.
	ID          uint64      `json:"id"`
	State       State       `json:"state"`
	Attestation Attestation `json:"attestation"`
	// Reason says why the anchor failed, or why its attestation did.
	Reason string `json:"reason,omitempty"`
	// Origin, Size and Root are the anchored checkpoint; Checkpoint is its
	// signed note as read when it was queued; Metadata the exact string
	// sent as logBatch's third argument.
	Origin     string `json:"origin"`
	Size       uint64 `json:"size"`
	Root       string `json:"root"`
	Checkpoint string `json:"checkpoint"`
	Metadata   string `json:"metadata"`
	// Chain and contract the anchor is for, and the sender.
	ChainID  uint64 `json:"chain_id"`
	Contract string `json:"contract"`
	Sender   string `json:"sender"`
	// Nonce of the transaction(s); set once the first one is signed.
	Nonce *uint64 `json:"nonce,omitempty"`
	// Txs are the signed transactions for this anchor, the first and its
	// fee-bumped replacements, oldest first; all share Nonce.
	Txs []Tx `json:"txs,omitempty"`
	// TxHash, Block, BlockHash and RecordID are the mined transaction, its
	// block, and the DAALog record id from its ActionLogged event.
	TxHash    string `json:"tx_hash,omitempty"`
	Block     uint64 `json:"block,omitempty"`
	BlockHash string `json:"block_hash,omitempty"`
	RecordID  uint64 `json:"record_id,omitempty"`
	// SendErrors counts consecutive failed broadcasts; NextTry is when the
	// next may happen (exponential backoff).
	SendErrors int       `json:"send_errors,omitempty"`
	NextTry    time.Time `json:"next_try,omitzero"`
	// Times of the transitions.
	QueuedAt     time.Time `json:"queued_at"`
	SubmittedAt  time.Time `json:"submitted_at,omitzero"`
	ConfirmedAt  time.Time `json:"confirmed_at,omitzero"`
	ReconciledAt time.Time `json:"reconciled_at,omitzero"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Tx is one signed transaction of an anchor.
type Tx struct {
	Hash string `json:"hash"`
	// Raw is the signed transaction (0x-hex of its binary encoding), kept
	// so that a restarted anchorer broadcasts exactly the same transaction.
	Raw    string    `json:"raw"`
	FeeCap string    `json:"fee_cap"`
	TipCap string    `json:"tip_cap"`
	Gas    uint64    `json:"gas"`
	Signed time.Time `json:"signed"`
}

// InFlight reports whether the anchor still waits for its transaction.
func (a *Anchor) InFlight() bool { return a.State == Queued || a.State == Submitted }

// LedgerFile is the ledger's file name in its directory (DATA_DIR/daal).
const LedgerFile = "anchors.jsonl"

// maxLedgerLine bounds one ledger line (a signed transaction with a long
// checkpoint note is a few KiB).
const maxLedgerLine = 1 << 20

// ParseLedger reads a ledger file's bytes: the latest state of every anchor,
// in id order, and how many leading bytes are complete lines. Bytes after
// the last newline are a torn write and are ignored.
func ParseLedger(raw []byte) ([]*Anchor, int, error) {
	complete := bytes.LastIndexByte(raw, '\n') + 1
	byID := map[uint64]*Anchor{}
	sc := bufio.NewScanner(bytes.NewReader(raw[:complete]))
	sc.Buffer(make([]byte, 64*1024), maxLedgerLine)
	line := 0
	for sc.Scan() {
		line++
		a, err := ParseAnchorLine(sc.Bytes())
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, ok := byID[a.ID]; ok && !ValidTransition(prev.State, a.State) {
			return nil, 0, fmt.Errorf("line %d: anchor %d goes from %s to %s, which never happens", line, a.ID, prev.State, a.State)
		}
		byID[a.ID] = a
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("line %d: %w", line+1, err)
	}
	out := make([]*Anchor, 0, len(byID))
	for _, a := range byID {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, complete, nil
}

// ParseAnchorLine reads and checks one ledger line (without its newline).
func ParseAnchorLine(line []byte) (*Anchor, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var a Anchor
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("not an anchor record: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	if a.ID == 0 {
		return nil, errors.New("anchor id 0")
	}
	switch a.State {
	case Queued, Submitted, Confirmed, Failed:
	default:
		return nil, fmt.Errorf("anchor %d: unknown state %q", a.ID, a.State)
	}
	switch a.Attestation {
	case Pending, Verified, AttestFailed:
	default:
		return nil, fmt.Errorf("anchor %d: unknown attestation %q", a.ID, a.Attestation)
	}
	if a.State == Submitted && (a.Nonce == nil || len(a.Txs) == 0) {
		return nil, fmt.Errorf("anchor %d: submitted without a signed transaction", a.ID)
	}
	if a.State == Confirmed && a.TxHash == "" {
		return nil, fmt.Errorf("anchor %d: confirmed without a transaction hash", a.ID)
	}
	return &a, nil
}

// ValidTransition lists the state changes a ledger may record.
func ValidTransition(from, to State) bool {
	switch from {
	case Queued:
		return to == Queued || to == Submitted || to == Failed
	case Submitted:
		return to == Submitted || to == Confirmed || to == Failed
	case Confirmed:
		return to == Confirmed || to == Submitted // a reorg re-opens it
	case Failed:
		return to == Failed
	}
	return false
}

// Clone is a deep copy of the anchor.
func (a *Anchor) Clone() Anchor {
	c := *a
	c.Txs = append([]Tx(nil), a.Txs...)
	if a.Nonce != nil {
		n := *a.Nonce
		c.Nonce = &n
	}
	return c
}

// MarshalJSONLine is the anchor as one ledger line.
func (a *Anchor) MarshalJSONLine() ([]byte, error) {
	b, err := json.Marshal(a)
	return append(b, '\n'), err
}
