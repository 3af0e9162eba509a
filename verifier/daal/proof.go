package daal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ProofVersion is the version of the DAAL proof format.
const ProofVersion = 1

// maxProof bounds a DAAL proof document.
const maxProof = 8 << 20

// Proof proves that one log entry is covered by a checkpoint anchor on
// chain, offline. It is a JSON object (byte strings in standard base64):
//
//	{
//	  "v": 1,
//	  "origin": "<log origin>",
//	  "index": <entry index>,
//	  "entry": "<base64 entry bytes>",
//	  "anchor": {
//	    "chain_id": <decimal>, "contract": "0x…", "sender": "0x…",
//	    "tx_hash": "0x…", "block": <decimal>, "block_hash": "0x…",
//	    "record_id": <decimal>, "size": <anchored tree size>,
//	    "root": "0x<anchored root>", "metadata": "<metadata string>"
//	  },
//	  "inclusion": ["<base64 hash>", …],     // entry index into the anchored tree
//	  "checkpoint": "<signed note>",          // the log's checkpoint, size >= anchor.size
//	  "consistency": ["<base64 hash>", …],   // anchor tree -> checkpoint tree (empty if equal)
//	  "receipt": <receipt dump of tx_hash>
//	}
//
// VerifyProof says what an auditor checks.
type Proof struct {
	V           int          `json:"v"`
	Origin      string       `json:"origin"`
	Index       uint64       `json:"index"`
	Entry       []byte       `json:"entry"`
	Anchor      ProofAnchor  `json:"anchor"`
	Inclusion   [][]byte     `json:"inclusion"`
	Checkpoint  string       `json:"checkpoint"`
	Consistency [][]byte     `json:"consistency"`
	Receipt     *ReceiptDump `json:"receipt"`
}

// ProofAnchor names the anchor a proof uses.
type ProofAnchor struct {
	ChainID   uint64 `json:"chain_id"`
	Contract  string `json:"contract"`
	Sender    string `json:"sender"`
	TxHash    string `json:"tx_hash"`
	Block     uint64 `json:"block"`
	BlockHash string `json:"block_hash"`
	RecordID  uint64 `json:"record_id"`
	Size      uint64 `json:"size"`
	Root      string `json:"root"`
	Metadata  string `json:"metadata"`
}

// Marshal is the proof's JSON form.
func (p *Proof) Marshal() []byte {
	b, _ := json.MarshalIndent(p, "", "  ")
	return append(b, '\n')
}

// ErrProof is wrapped by every ParseProof and VerifyProof error.
var ErrProof = errors.New("daal proof")

// ParseProof reads a DAAL proof (syntax and the receipt dump's own
// consistency only; see VerifyProof).
func ParseProof(raw []byte) (*Proof, error) {
	if len(raw) > maxProof {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrProof, len(raw), maxProof)
	}
	var p struct {
		Proof
		Receipt json.RawMessage `json:"receipt"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: not a DAAL proof: %w", ErrProof, err)
	}
	if p.V != ProofVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrProof, p.V, ProofVersion)
	}
	if len(p.Inclusion) > 64 || len(p.Consistency) > 128 {
		return nil, fmt.Errorf("%w: proof paths too long", ErrProof)
	}
	for _, h := range append(append([][]byte{}, p.Inclusion...), p.Consistency...) {
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("%w: a proof hash is %d bytes, want 32", ErrProof, len(h))
		}
	}
	out := p.Proof
	if !isNull(p.Receipt) {
		d, err := ParseReceiptDump(p.Receipt)
		if err != nil {
			return nil, fmt.Errorf("%w: receipt: %w", ErrProof, err)
		}
		out.Receipt = d
	}
	return &out, nil
}

// Trust is what an auditor brings to VerifyProof: the log's checkpoint
// verifier key, and the chain, contract and sender they accept anchors
// from.
type Trust struct {
	LogKey   note.Verifier
	ChainID  uint64
	Contract common.Address
	Sender   common.Address
}

// VerifyProof checks a DAAL proof with no network access:
//
//  1. the checkpoint is signed by the log's key and names the origin;
//  2. the anchored tree (anchor.size, anchor.root) is a prefix of the
//     checkpoint's tree (consistency proof);
//  3. the entry is at index in the anchored tree (inclusion proof);
//  4. the receipt dump (receipt, or dump if given: one the auditor fetched
//     independently) is of anchor.tx_hash on the trusted chain: status 1,
//     sent by the trusted sender to the trusted contract, calling
//     logBatch(origin, root, metadata), with the contract's ActionLogged
//     event carrying keccak256(origin), the root, the record id and the
//     metadata, and the metadata names anchor.size and the SHA-256 of the
//     checkpoint body (origin, size, root).
//
// What it cannot check offline is that the dump's block is canonical:
// compare anchor.block_hash with a node or explorer you trust.
func VerifyProof(p *Proof, trust Trust, dump *ReceiptDump) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrProof, fmt.Sprintf(format, args...))
	}
	if trust.LogKey == nil {
		return fail("no log verifier key")
	}
	origin := trust.LogKey.Name()
	if p.Origin != origin {
		return fail("the proof is for the log %q, the key is for %q", p.Origin, origin)
	}
	a := p.Anchor
	root, err := hexutil.Decode(a.Root)
	if err != nil || len(root) != 32 {
		return fail("anchor.root %q is not 32 bytes of 0x-hex", a.Root)
	}
	// 1. The log's checkpoint.
	cp, _, _, err := flog.ParseCheckpoint([]byte(p.Checkpoint), origin, trust.LogKey)
	if err != nil {
		return fail("checkpoint: not signed by the log's key: %v", err)
	}
	// 2. The anchored tree is a prefix of it.
	if a.Size == 0 || a.Size > cp.Size {
		return fail("anchor.size %d is not within the checkpoint's tree of %d", a.Size, cp.Size)
	}
	if a.Size == cp.Size {
		if !bytes.Equal(root, cp.Hash) {
			return fail("consistency: the anchored root differs from the checkpoint's root of the same size")
		}
	} else if err := proof.VerifyConsistency(rfc6962.DefaultHasher, a.Size, cp.Size, p.Consistency, root, cp.Hash); err != nil {
		return fail("consistency: the anchored tree (%d) is not a prefix of the checkpoint's (%d): %v", a.Size, cp.Size, err)
	}
	// 3. The entry is in the anchored tree.
	if p.Index >= a.Size {
		return fail("inclusion: index %d is not in the anchored tree of %d", p.Index, a.Size)
	}
	if len(p.Entry) == 0 {
		return fail("inclusion: no entry")
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, a.Size, rfc6962.DefaultHasher.HashLeaf(p.Entry), p.Inclusion, root); err != nil {
		return fail("inclusion: entry %d is not in the anchored tree: %v", p.Index, err)
	}
	// 4. The transaction.
	d := p.Receipt
	if dump != nil {
		if d != nil && d.TxHash() != dump.TxHash() {
			return fail("receipt: the dump given is of %s, the proof's of %s", dump.TxHash(), d.TxHash())
		}
		d = dump
	}
	if d == nil || d.tx == nil {
		return fail("receipt: the proof has no receipt dump and none was given (or one not read with ParseReceiptDump)")
	}
	if d.ChainIDValue().Cmp(new(big.Int).SetUint64(trust.ChainID)) != 0 || a.ChainID != trust.ChainID {
		return fail("receipt: chain %s, the trusted chain is %d", d.ChainIDValue(), trust.ChainID)
	}
	if d.TxHash() != common.HexToHash(a.TxHash) {
		return fail("receipt: of transaction %s, the anchor names %s", d.TxHash().Hex(), a.TxHash)
	}
	if d.Status() != 1 {
		return fail("receipt: status %d, the transaction failed", d.Status())
	}
	if d.From() != trust.Sender {
		return fail("receipt: sent by %s, not by the trusted anchoring sender %s", d.From().Hex(), trust.Sender.Hex())
	}
	if to := d.To(); to == nil || *to != trust.Contract {
		return fail("receipt: not a transaction to the trusted contract %s", trust.Contract.Hex())
	}
	n, h := d.Block()
	if n != a.Block || h != common.HexToHash(a.BlockHash) {
		return fail("receipt: block %d %s, the anchor names block %d %s", n, h.Hex(), a.Block, a.BlockHash)
	}
	call, err := ParseCall(d.Input())
	if err != nil || call.Method != "logBatch" || call.AgentID != origin || !bytes.Equal(call.Hash[:], root) || call.Metadata != a.Metadata {
		return fail("receipt: the transaction is not logBatch(%q, anchor.root, anchor.metadata)", origin)
	}
	var found bool
	for _, l := range d.Logs() {
		if l.Address != trust.Contract {
			continue
		}
		ev, err := ParseActionLogged(l)
		if err != nil {
			continue
		}
		if ev.AgentTopic == AgentTopic(origin) && bytes.Equal(ev.ActionHash[:], root) && ev.Metadata == a.Metadata &&
			ev.RecordID.IsUint64() && ev.RecordID.Uint64() == a.RecordID {
			found = true
		}
	}
	if !found {
		return fail("receipt: no ActionLogged event of the contract with record %d, our origin, the root and the metadata", a.RecordID)
	}
	meta, err := ParseMetadata(a.Metadata)
	if err != nil {
		return fail("metadata: %v", err)
	}
	if meta.Size != a.Size {
		return fail("metadata: names size %d, the anchor %d", meta.Size, a.Size)
	}
	if meta.Checkpoint != sha256.Sum256(CheckpointBody(origin, a.Size, root)) {
		return fail("metadata: names another checkpoint than (origin, size, root)")
	}
	return nil
}

// Prove builds the DAAL proof of entry index: it picks the smallest verified
// anchor of ours on chain that covers the entry (found by a chain-only
// reconciliation), and proves the entry into it and it into the log's
// current checkpoint. If the ledger holds that anchor's checkpoint note,
// the proof carries that note instead (no consistency proof needed).
func Prove(ctx context.Context, cfg ReconcileConfig, index uint64) (*Proof, error) {
	ledger := cfg.Ledger
	cfg.Ledger = nil
	rep, err := Reconcile(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var best *ChainAnchor
	for i := range rep.OnChain {
		ca := &rep.OnChain[i]
		if ca.Verdict == "verified" && ca.Size > index && (best == nil || ca.Size < best.Size) {
			best = ca
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no verified anchor on chain covers entry %d yet (the latest checkpoint has %d entries); anchor it first, or wait for the next anchor", index, rep.Checkpoint.Size)
	}
	tree := cfg.Tree
	cp, err := tree.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if cp.Size < best.Size {
		return nil, fmt.Errorf("the log shrank while proving (size %d < %d)", cp.Size, best.Size)
	}
	entry, err := tree.Entry(ctx, cp, index)
	if err != nil {
		return nil, err
	}
	incl, err := tree.InclusionProof(ctx, cp, index, best.Size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, best.Size, err)
	}
	checkpoint := string(cp.Note)
	var cons [][]byte
	usedNote := false
	if ledger != nil {
		for _, an := range ledger.Anchors() {
			if an.TxHash == best.TxHash && an.Size == best.Size {
				checkpoint, usedNote = an.Checkpoint, true
			}
		}
	}
	if !usedNote {
		if cons, err = tree.ConsistencyProof(ctx, cp, best.Size); err != nil {
			return nil, fmt.Errorf("consistency proof %d..%d: %w", best.Size, cp.Size, err)
		}
	}
	dump, err := cfg.Chain.Dump(ctx, common.HexToHash(best.TxHash))
	if err != nil {
		return nil, fmt.Errorf("receipt dump of %s: %w", best.TxHash, err)
	}
	rid, _ := new(big.Int).SetString(best.RecordID, 10)
	if rid == nil || !rid.IsUint64() {
		return nil, fmt.Errorf("record id %q out of range", best.RecordID)
	}
	return &Proof{
		V:      ProofVersion,
		Origin: tree.Origin(),
		Index:  index,
		Entry:  entry,
		Anchor: ProofAnchor{
			ChainID: rep.ChainID, Contract: rep.Contract, Sender: rep.Sender, TxHash: best.TxHash, Block: best.Block,
			BlockHash: best.BlockHash, RecordID: rid.Uint64(), Size: best.Size, Root: best.Hash, Metadata: best.Metadata,
		},
		Inclusion:   incl,
		Checkpoint:  checkpoint,
		Consistency: cons,
		Receipt:     dump,
	}, nil
}
