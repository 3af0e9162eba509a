package daal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// DumpVersion is the version of the receipt dump format.
const DumpVersion = 1

// maxDump bounds a receipt dump.
const maxDump = 4 << 20

// ReceiptDump is what an auditor needs from the chain to check one anchor
// transaction offline. It is a JSON object:
//
//	{
//	  "v": 1,
//	  "chain_id": "0x539",
//	  "transaction": <the result of eth_getTransactionByHash, verbatim>,
//	  "receipt":     <the result of eth_getTransactionReceipt, verbatim>
//	}
//
// Anyone can make one with two JSON-RPC calls to any node of the chain
// (e.g. curl -d '{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionReceipt","params":["0x…"]}').
// ParseReceiptDump checks it is self-consistent: the transaction's fields
// hash to its "hash", its signature recovers its "from" on chain_id, and
// the receipt is that transaction's (hash, from, to, block). It cannot tell
// whether the block is on the canonical chain: the auditor compares
// blockHash with a node or explorer they trust, once.
type ReceiptDump struct {
	V           int             `json:"v"`
	ChainID     string          `json:"chain_id"`
	Transaction json.RawMessage `json:"transaction"`
	Receipt     json.RawMessage `json:"receipt"`

	chainID *big.Int
	tx      *types.Transaction
	from    common.Address
	rcpt    dumpReceipt
}

type dumpReceipt struct {
	TransactionHash *common.Hash    `json:"transactionHash"`
	From            *common.Address `json:"from"`
	To              *common.Address `json:"to"`
	Status          *hexutil.Uint64 `json:"status"`
	BlockHash       *common.Hash    `json:"blockHash"`
	BlockNumber     *hexutil.Big    `json:"blockNumber"`
	Logs            []dumpLog       `json:"logs"`
}

type dumpLog struct {
	Address         *common.Address `json:"address"`
	Topics          []common.Hash   `json:"topics"`
	Data            *hexutil.Bytes  `json:"data"`
	LogIndex        *hexutil.Uint64 `json:"logIndex"`
	TransactionHash *common.Hash    `json:"transactionHash"`
	BlockHash       *common.Hash    `json:"blockHash"`
	Removed         bool            `json:"removed"`
}

type dumpTx struct {
	Hash        *common.Hash    `json:"hash"`
	From        *common.Address `json:"from"`
	BlockHash   *common.Hash    `json:"blockHash"`
	BlockNumber *hexutil.Big    `json:"blockNumber"`
}

// ErrDump is wrapped by every ParseReceiptDump error.
var ErrDump = errors.New("daal: receipt dump")

// ParseReceiptDump reads and checks a receipt dump.
func ParseReceiptDump(raw []byte) (*ReceiptDump, error) {
	if len(raw) > maxDump {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrDump, len(raw), maxDump)
	}
	// plain has ReceiptDump's fields without its UnmarshalJSON.
	type plain ReceiptDump
	var p plain
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: not a receipt dump object: %w", ErrDump, err)
	}
	d := ReceiptDump(p)
	if d.V != DumpVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrDump, d.V, DumpVersion)
	}
	id, err := hexutil.DecodeBig(d.ChainID)
	if err != nil || id.Sign() <= 0 {
		return nil, fmt.Errorf("%w: chain_id %q is not a 0x-hex chain id", ErrDump, d.ChainID)
	}
	d.chainID = id
	if isNull(d.Transaction) || isNull(d.Receipt) {
		return nil, fmt.Errorf("%w: transaction and receipt are both required (the transaction must be mined)", ErrDump)
	}
	var tx types.Transaction
	if err := tx.UnmarshalJSON(d.Transaction); err != nil {
		return nil, fmt.Errorf("%w: transaction: %w", ErrDump, err)
	}
	var meta dumpTx
	if err := json.Unmarshal(d.Transaction, &meta); err != nil {
		return nil, fmt.Errorf("%w: transaction: %w", ErrDump, err)
	}
	if meta.Hash == nil || *meta.Hash != tx.Hash() {
		return nil, fmt.Errorf("%w: the transaction's fields hash to %s, not to its \"hash\"", ErrDump, tx.Hash())
	}
	if tx.Type() != types.LegacyTxType || tx.Protected() {
		if tx.ChainId().Cmp(id) != 0 {
			return nil, fmt.Errorf("%w: the transaction is for chain %s, the dump says %s", ErrDump, tx.ChainId(), id)
		}
	}
	from, err := types.Sender(types.LatestSignerForChainID(id), &tx)
	if err != nil {
		return nil, fmt.Errorf("%w: transaction signature: %w", ErrDump, err)
	}
	if meta.From == nil || *meta.From != from {
		return nil, fmt.Errorf("%w: the transaction's signature recovers %s, not its \"from\"", ErrDump, from)
	}
	d.tx, d.from = &tx, from
	if err := json.Unmarshal(d.Receipt, &d.rcpt); err != nil {
		return nil, fmt.Errorf("%w: receipt: %w", ErrDump, err)
	}
	r := &d.rcpt
	switch {
	case r.TransactionHash == nil || *r.TransactionHash != tx.Hash():
		return nil, fmt.Errorf("%w: the receipt is not the transaction's (transactionHash)", ErrDump)
	case r.Status == nil || r.BlockHash == nil || r.BlockNumber == nil:
		return nil, fmt.Errorf("%w: the receipt lacks status, blockHash or blockNumber", ErrDump)
	case r.From != nil && *r.From != from:
		return nil, fmt.Errorf("%w: the receipt's from differs from the transaction's sender", ErrDump)
	case !sameAddr(r.To, tx.To()):
		return nil, fmt.Errorf("%w: the receipt's to differs from the transaction's", ErrDump)
	case meta.BlockHash == nil || *meta.BlockHash != *r.BlockHash:
		return nil, fmt.Errorf("%w: the transaction and the receipt name different blocks", ErrDump)
	case meta.BlockNumber == nil || (*big.Int)(meta.BlockNumber).Cmp((*big.Int)(r.BlockNumber)) != 0:
		return nil, fmt.Errorf("%w: the transaction and the receipt name different block numbers", ErrDump)
	case !(*big.Int)(r.BlockNumber).IsUint64():
		return nil, fmt.Errorf("%w: block number out of range", ErrDump)
	}
	for i, l := range r.Logs {
		if l.Address == nil || l.Data == nil || l.TransactionHash == nil || *l.TransactionHash != tx.Hash() ||
			l.BlockHash == nil || *l.BlockHash != *r.BlockHash || l.LogIndex == nil || l.Removed {
			return nil, fmt.Errorf("%w: receipt log %d is incomplete or not the transaction's", ErrDump, i)
		}
	}
	return &d, nil
}

func sameAddr(a *common.Address, b *common.Address) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// UnmarshalJSON parses and checks a dump (ParseReceiptDump), so a dump
// inside a report, alert or proof is usable once decoded.
func (d *ReceiptDump) UnmarshalJSON(b []byte) error {
	p, err := ParseReceiptDump(b)
	if err != nil {
		return err
	}
	*d = *p
	return nil
}

// Marshal is the dump in its JSON form.
func (d *ReceiptDump) Marshal() []byte {
	b, _ := json.MarshalIndent(d, "", "  ")
	return append(b, '\n')
}

// TxHash is the transaction's hash.
func (d *ReceiptDump) TxHash() common.Hash { return d.tx.Hash() }

// From is the transaction's sender, recovered from its signature.
func (d *ReceiptDump) From() common.Address { return d.from }

// To is the transaction's recipient (nil for a contract creation).
func (d *ReceiptDump) To() *common.Address { return d.tx.To() }

// Input is the transaction's calldata.
func (d *ReceiptDump) Input() []byte { return d.tx.Data() }

// Status is the receipt status (1 success, 0 failure).
func (d *ReceiptDump) Status() uint64 { return uint64(*d.rcpt.Status) }

// Block is the block number and hash the receipt names.
func (d *ReceiptDump) Block() (uint64, common.Hash) {
	return (*big.Int)(d.rcpt.BlockNumber).Uint64(), *d.rcpt.BlockHash
}

// ChainIDValue is the chain id.
func (d *ReceiptDump) ChainIDValue() *big.Int { return new(big.Int).Set(d.chainID) }

// Logs are the receipt's logs.
func (d *ReceiptDump) Logs() []*types.Log {
	out := make([]*types.Log, len(d.rcpt.Logs))
	n, _ := d.Block()
	for i, l := range d.rcpt.Logs {
		out[i] = &types.Log{Address: *l.Address, Topics: l.Topics, Data: *l.Data, Index: uint(*l.LogIndex),
			TxHash: *l.TransactionHash, BlockHash: *l.BlockHash, BlockNumber: n}
	}
	return out
}
