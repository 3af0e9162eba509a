package daal

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// ChainReader is read access to a chain and the DAALog contract on it: what
// Reconcile and Prove read. This package does no I/O of its own; the
// operator's implementation is log/anchor/daal's Chain (go-ethereum's
// ethclient), the auditor's a minimal JSON-RPC reader (verifier/daal/ethrpc).
type ChainReader interface {
	// ChainID is the chain's id; Contract the DAALog address.
	ChainID() *big.Int
	Contract() common.Address
	// BlockNumber is the number of the head block.
	BlockNumber(ctx context.Context) (uint64, error)
	// CodeHash is keccak256 of the contract's code now (the empty-code
	// hash if there is no contract), and the code's length.
	CodeHash(ctx context.Context) (common.Hash, int, error)
	// Events returns the contract's ActionLogged events in blocks
	// [from, to] that are not removed, querying at most step blocks at a
	// time.
	Events(ctx context.Context, from, to, step uint64) ([]types.Log, error)
	// TransactionByHash returns a transaction; ethereum.NotFound if the
	// chain does not know it.
	TransactionByHash(ctx context.Context, h common.Hash) (*types.Transaction, error)
	// TransactionReceipt returns a mined transaction's receipt;
	// ethereum.NotFound if it is not mined (on the canonical chain).
	TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error)
	// Dump is the receipt dump of a mined transaction (NewReceiptDump of
	// the eth_getTransactionByHash and eth_getTransactionReceipt answers).
	Dump(ctx context.Context, h common.Hash) (*ReceiptDump, error)
}

// DefaultBlockStep is the most blocks ScanEvents asks for at a time when
// the caller gives no step (public endpoints cap eth_getLogs ranges).
const DefaultBlockStep = 10_000

// ScanEvents returns the events query finds in blocks [from, to], asking
// for at most step blocks at a time (DefaultBlockStep if 0), in order, and
// leaves out removed ones (logs of blocks reorganised away). It is the
// loop of a ChainReader's Events; query reads one range [lo, hi].
func ScanEvents(ctx context.Context, from, to, step uint64, query func(ctx context.Context, lo, hi uint64) ([]types.Log, error)) ([]types.Log, error) {
	if step == 0 {
		step = DefaultBlockStep
	}
	var out []types.Log
	for lo := from; lo <= to; lo += step {
		hi := min(to, lo+step-1)
		logs, err := query(ctx, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("read ActionLogged events in blocks %d..%d: %w", lo, hi, err)
		}
		for _, l := range logs {
			if !l.Removed {
				out = append(out, l)
			}
		}
		if hi == to {
			break
		}
	}
	return out, nil
}

// Ledger is the operator's record of its anchors (log/anchor/daal's
// Ledger): Reconcile reads it and records each anchor's new state and
// attestation with Put.
type Ledger interface {
	Anchors() []Anchor
	Put(Anchor) error
}

// NewReceiptDump makes the receipt dump of a transaction on the chain
// chainID from the JSON-RPC answers to eth_getTransactionByHash and
// eth_getTransactionReceipt, verbatim. It returns ethereum.NotFound if
// either is null (the transaction is not mined), and otherwise checks the
// dump as ParseReceiptDump does.
func NewReceiptDump(chainID *big.Int, tx, receipt json.RawMessage) (*ReceiptDump, error) {
	if isNull(tx) || isNull(receipt) {
		return nil, ethereum.NotFound
	}
	d := &ReceiptDump{
		V:           DumpVersion,
		ChainID:     "0x" + chainID.Text(16),
		Transaction: tx,
		Receipt:     receipt,
	}
	// Round-trip through the parser so a dump this returns always verifies
	// syntactically.
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return ParseReceiptDump(raw)
}

func isNull(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }

// sender is a transaction's sender on chainID.
func sender(chainID *big.Int, tx *types.Transaction) (common.Address, error) {
	return types.Sender(types.LatestSignerForChainID(chainID), tx)
}
