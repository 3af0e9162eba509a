package daal

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
)

// Deployment is a deployed DAALog.
type Deployment struct {
	Contract common.Address
	TxHash   common.Hash
	Block    uint64
	CodeHash common.Hash
}

// Deploy deploys the committed DAALog artifact from signer and waits (until
// ctx ends) for it to be mined; it checks the deployed code hash is the
// artifact's.
func Deploy(ctx context.Context, rc *rpc.Client, signer Signer, poll time.Duration) (*Deployment, error) {
	c := (&Chain{}).withClient(rc)
	id, err := c.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the chain id: %w", err)
	}
	from := signer.Address()
	nonce, err := c.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, err
	}
	gas, err := c.EstimateGas(ctx, ethereum.CallMsg{From: from, Data: daalog.DeployCode()})
	if err != nil {
		return nil, fmt.Errorf("estimate deployment gas (is %s funded?): %w", from.Hex(), err)
	}
	tip, err := c.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, err
	}
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	fee := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	tx, err := signer.SignTx(ctx, types.NewTx(&types.DynamicFeeTx{ChainID: id, Nonce: nonce, GasTipCap: tip, GasFeeCap: fee, Gas: gas + gas/4, Data: daalog.DeployCode()}), id)
	if err != nil {
		return nil, err
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("send the deployment: %w", err)
	}
	for {
		r, err := c.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				return nil, fmt.Errorf("deployment %s reverted", tx.Hash())
			}
			code, err := c.CodeAt(ctx, r.ContractAddress, nil)
			if err != nil {
				return nil, err
			}
			d := &Deployment{Contract: r.ContractAddress, TxHash: tx.Hash(), Block: r.BlockNumber.Uint64(), CodeHash: crypto.Keccak256Hash(code)}
			if d.CodeHash != daalog.RuntimeCodeHash {
				return d, fmt.Errorf("deployed code hash %s is not the artifact's %s", d.CodeHash, daalog.RuntimeCodeHash)
			}
			return d, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("deployment %s not mined yet: %w", tx.Hash(), ctx.Err())
		case <-time.After(poll):
		}
	}
}
