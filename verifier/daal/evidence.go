package daal

import (
	"bytes"
	"fmt"

	"github.com/ethereum/go-ethereum/common/hexutil"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// VerifyEvidence checks split-view evidence offline, trusting only trust
// (the log's key, the chain, the contract and the anchoring sender). It
// returns nil when the evidence proves that the anchoring sender put on
// chain, for the log's origin, a root that contradicts the log's own signed
// tree: the receipt dump is a successful logBatch(origin, OnChainRoot,
// metadata of OnChainSize) from the sender to the contract, and the log's
// signed checkpoint with the consistency proof fixes the root at
// OnChainSize to LogRoot, which differs.
//
// Evidence of a root beyond the log's tree (no LogRoot) proves only that
// the anchor was ahead of the checkpoint it is shown with; VerifyEvidence
// says so in its error.
func VerifyEvidence(e *Evidence, trust Trust) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("daal evidence: %s", fmt.Sprintf(format, args...))
	}
	if trust.LogKey == nil {
		return fail("no log verifier key")
	}
	origin := trust.LogKey.Name()
	cp, _, _, err := flog.ParseCheckpoint([]byte(e.Checkpoint), origin, trust.LogKey)
	if err != nil {
		return fail("the checkpoint is not signed by the log's key: %v", err)
	}
	d := e.Receipt
	if d == nil || d.tx == nil {
		return fail("no receipt dump (or one not read with ParseReceiptDump)")
	}
	if d.ChainIDValue().Uint64() != trust.ChainID || d.Status() != 1 || d.From() != trust.Sender {
		return fail("the receipt is not a successful transaction of the trusted sender on the trusted chain")
	}
	if to := d.To(); to == nil || *to != trust.Contract {
		return fail("the transaction is not to the trusted contract")
	}
	onChain, err := hexutil.Decode(e.OnChainRoot)
	if err != nil || len(onChain) != 32 {
		return fail("on_chain_root is not 32 bytes of 0x-hex")
	}
	call, err := ParseCall(d.Input())
	if err != nil || call.Method != "logBatch" || call.AgentID != origin || !bytes.Equal(call.Hash[:], onChain) {
		return fail("the transaction is not logBatch(%q, on_chain_root, …)", origin)
	}
	var logged bool
	for _, l := range d.Logs() {
		if ev, err := ParseActionLogged(l); err == nil && l.Address == trust.Contract &&
			ev.AgentTopic == AgentTopic(origin) && bytes.Equal(ev.ActionHash[:], onChain) {
			logged = true
		}
	}
	if !logged {
		return fail("the receipt has no ActionLogged event of the contract with the on-chain root")
	}
	if meta, err := ParseMetadata(call.Metadata); err == nil && meta.Size != e.OnChainSize {
		return fail("on_chain_size %d is not the size in the anchor's metadata (%d)", e.OnChainSize, meta.Size)
	}
	if e.LogRoot == "" {
		if e.OnChainSize > cp.Size {
			return fail("the anchor names size %d, beyond the checkpoint shown (%d): suspicious, but not a proven contradiction", e.OnChainSize, cp.Size)
		}
		return fail("no log root to compare with")
	}
	logRoot, err := hexutil.Decode(e.LogRoot)
	if err != nil || len(logRoot) != 32 {
		return fail("log_root is not 32 bytes of 0x-hex")
	}
	if e.OnChainSize == 0 || e.OnChainSize > cp.Size {
		return fail("on_chain_size %d is not within the checkpoint's tree (%d)", e.OnChainSize, cp.Size)
	}
	if e.OnChainSize == cp.Size {
		if !bytes.Equal(logRoot, cp.Hash) {
			return fail("log_root is not the checkpoint's root")
		}
	} else if err := proof.VerifyConsistency(rfc6962.DefaultHasher, e.OnChainSize, cp.Size, e.Consistency, logRoot, cp.Hash); err != nil {
		return fail("the consistency proof does not fix the log's root at %d to log_root: %v", e.OnChainSize, err)
	}
	if bytes.Equal(logRoot, onChain) {
		return fail("the on-chain root equals the log's root: no contradiction")
	}
	return nil
}
