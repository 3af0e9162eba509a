package daal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// Chain is a JSON-RPC endpoint and the DAALog contract on it, through
// go-ethereum's client. It is a vdaal.ChainReader.
type Chain struct {
	eth      *ethclient.Client
	rpc      *rpc.Client
	contract common.Address
	chainID  *big.Int
}

// Dial connects to a JSON-RPC endpoint (http, https, ws, wss or an IPC
// path) and reads its chain id.
func Dial(ctx context.Context, endpoint string, contract common.Address) (*Chain, error) {
	rc, err := rpc.DialContext(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("chain endpoint %s: %w", endpoint, err)
	}
	return NewChain(ctx, rc, contract)
}

// NewChain uses an open RPC client.
func NewChain(ctx context.Context, rc *rpc.Client, contract common.Address) (*Chain, error) {
	if contract == (common.Address{}) {
		return nil, errors.New("daal: no DAALog contract address given")
	}
	ec := ethclient.NewClient(rc)
	id, err := ec.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the chain id: %w", err)
	}
	return &Chain{eth: ec, rpc: rc, contract: contract, chainID: id}, nil
}

func (c *Chain) withClient(rc *rpc.Client) *ethclient.Client {
	c.rpc, c.eth = rc, ethclient.NewClient(rc)
	return c.eth
}

// Contract is the DAALog address.
func (c *Chain) Contract() common.Address { return c.contract }

// ChainID is the chain's id.
func (c *Chain) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// Client is the underlying go-ethereum client.
func (c *Chain) Client() *ethclient.Client { return c.eth }

// CodeHash is keccak256 of the contract's code now (the empty-code hash if
// there is no contract).
func (c *Chain) CodeHash(ctx context.Context) (common.Hash, int, error) {
	code, err := c.eth.CodeAt(ctx, c.contract, nil)
	if err != nil {
		return common.Hash{}, 0, fmt.Errorf("read the contract's code: %w", err)
	}
	return crypto.Keccak256Hash(code), len(code), nil
}

// CodeError is CheckCode's answer when the contract's code is not the one
// expected: anchors in it would prove nothing an auditor accepts.
type CodeError struct {
	Contract common.Address
	// Got is the hash of the code found (of Len bytes; 0 when there is no
	// contract at the address), Want the expected one.
	Got, Want common.Hash
	Len       int
}

func (e *CodeError) Error() string {
	return fmt.Sprintf("the contract at %s has code hash %s (%d bytes), not %s (ztlog's DAALog)", e.Contract.Hex(), e.Got.Hex(), e.Len, e.Want.Hex())
}

// CheckCode returns a *CodeError unless the contract's code now hashes to
// want and is not empty.
func (c *Chain) CheckCode(ctx context.Context, want common.Hash) error {
	got, n, err := c.CodeHash(ctx)
	if err != nil {
		return err
	}
	if n == 0 || got != want {
		return &CodeError{Contract: c.contract, Got: got, Want: want, Len: n}
	}
	return nil
}

// sender returns a transaction's sender.
func (c *Chain) sender(tx *types.Transaction) (common.Address, error) {
	return types.Sender(types.LatestSignerForChainID(c.chainID), tx)
}

// BlockNumber is the head block's number.
func (c *Chain) BlockNumber(ctx context.Context) (uint64, error) { return c.eth.BlockNumber(ctx) }

// TransactionByHash returns a transaction (ethereum.NotFound if unknown).
func (c *Chain) TransactionByHash(ctx context.Context, h common.Hash) (*types.Transaction, error) {
	tx, _, err := c.eth.TransactionByHash(ctx, h)
	return tx, err
}

// TransactionReceipt returns a mined transaction's receipt
// (ethereum.NotFound if it is not mined).
func (c *Chain) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	return c.eth.TransactionReceipt(ctx, h)
}

// Events returns the contract's ActionLogged events in blocks [from, to],
// querying at most step blocks at a time (public endpoints cap ranges).
func (c *Chain) Events(ctx context.Context, from, to, step uint64) ([]types.Log, error) {
	return vdaal.ScanEvents(ctx, from, to, step, func(ctx context.Context, lo, hi uint64) ([]types.Log, error) {
		return c.eth.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(lo),
			ToBlock:   new(big.Int).SetUint64(hi),
			Addresses: []common.Address{c.contract},
			Topics:    [][]common.Hash{{vdaal.ActionLoggedTopic}},
		})
	})
}

// Dump reads the JSON-RPC answers that make a receipt dump of txHash.
// It returns ethereum.NotFound if the transaction is not mined.
func (c *Chain) Dump(ctx context.Context, txHash common.Hash) (*vdaal.ReceiptDump, error) {
	var tx, receipt json.RawMessage
	if err := c.rpc.CallContext(ctx, &tx, "eth_getTransactionByHash", txHash); err != nil {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: %w", txHash, err)
	}
	if err := c.rpc.CallContext(ctx, &receipt, "eth_getTransactionReceipt", txHash); err != nil {
		return nil, fmt.Errorf("eth_getTransactionReceipt %s: %w", txHash, err)
	}
	return vdaal.NewReceiptDump(c.chainID, tx, receipt)
}
