// Package ethrpc is a minimal Ethereum JSON-RPC reader for auditors: the
// handful of read-only eth_ calls that DAAL reconciliation and proofs need
// (eth_chainId, eth_blockNumber, eth_getCode, eth_getLogs,
// eth_getTransactionByHash, eth_getTransactionReceipt), over HTTP(S) or a
// node's IPC socket, with net/http and encoding/json, the answers parsed
// with go-ethereum's core/types. It is the verifier/daal.ChainReader of
// zt-audit, which so links none of go-ethereum's RPC client, node or
// keystore (the operator's side, log/anchor/daal, uses go-ethereum's
// client).
package ethrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/zt-infra/ztlog/internal/httperr"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// maxResponse bounds one JSON-RPC answer (eth_getLogs over a block range
// is the largest).
const maxResponse = 64 << 20

// Reader reads one chain and the DAALog contract on it.
type Reader struct {
	endpoint string
	ipc      bool
	http     *http.Client
	contract common.Address
	chainID  *big.Int
	id       atomic.Uint64
}

// Dial uses a JSON-RPC endpoint (an http or https URL, or the path of a
// node's IPC socket) and reads its chain id.
func Dial(ctx context.Context, endpoint string, contract common.Address) (*Reader, error) {
	r := &Reader{endpoint: endpoint, contract: contract}
	switch {
	case endpoint == "":
		return nil, errors.New("no chain endpoint given: an http(s) URL or the path of a node's IPC socket")
	case strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://"):
		r.http = &http.Client{Timeout: 60 * time.Second}
	case strings.HasPrefix(endpoint, "ws://") || strings.HasPrefix(endpoint, "wss://"):
		return nil, fmt.Errorf("chain endpoint %s: websocket endpoints are not supported here; give the node's http(s) URL or IPC socket path", endpoint)
	case strings.Contains(endpoint, "://"):
		return nil, fmt.Errorf("chain endpoint %s: not an http(s) URL or an IPC socket path", endpoint)
	default:
		r.ipc = true
	}
	if contract == (common.Address{}) {
		return nil, errors.New("no DAALog contract address given")
	}
	var id hexutil.Big
	if err := r.call(ctx, &id, "eth_chainId"); err != nil {
		return nil, fmt.Errorf("read the chain id: %w", err)
	}
	r.chainID = (*big.Int)(&id)
	return r, nil
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

type response struct {
	ID     uint64          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call makes one JSON-RPC call and decodes its result into result (a
// *json.RawMessage keeps it verbatim; a null result is left for the caller
// to see).
func (r *Reader) call(ctx context.Context, result any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	req := request{JSONRPC: "2.0", ID: r.id.Add(1), Method: method, Params: params}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var raw []byte
	if r.ipc {
		raw, err = r.postIPC(ctx, body)
	} else {
		raw, err = r.postHTTP(ctx, body)
	}
	var tl *httperr.TooLargeError
	if errors.As(err, &tl) {
		return fmt.Errorf("%s: %w (query fewer blocks at a time)", method, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var resp response
	if err := json.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("%s: the endpoint's answer is not a JSON-RPC response: %w", method, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%s: %s (JSON-RPC error %d)", method, resp.Error.Message, resp.Error.Code)
	}
	if resp.ID != req.ID {
		return fmt.Errorf("%s: the answer is to request %d, not %d", method, resp.ID, req.ID)
	}
	if raw, ok := result.(*json.RawMessage); ok {
		*raw = resp.Result
		return nil
	}
	if len(resp.Result) == 0 || string(resp.Result) == "null" {
		return ethereum.NotFound
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("%s: result: %w", method, err)
	}
	return nil
}

func (r *Reader) postHTTP(ctx context.Context, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := httperr.ReadBody(resp.Body, maxResponse)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s: %s", resp.Status, bytes.TrimSpace(raw[:min(len(raw), 200)]))
	}
	return raw, nil
}

// postIPC sends one request on a fresh connection to the node's socket and
// reads the one JSON value it answers.
func (r *Reader) postIPC(ctx context.Context, body []byte) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", r.endpoint)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write(body); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	lr := &io.LimitedReader{R: conn, N: maxResponse}
	if err := json.NewDecoder(lr).Decode(&raw); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if lr.N == 0 {
			// The whole allowance was read and no value ended in it.
			return nil, &httperr.TooLargeError{Limit: maxResponse}
		}
		return nil, err
	}
	return raw, nil
}

// ChainID implements verifier/daal.ChainReader.
func (r *Reader) ChainID() *big.Int { return new(big.Int).Set(r.chainID) }

// Contract implements verifier/daal.ChainReader.
func (r *Reader) Contract() common.Address { return r.contract }

// BlockNumber implements verifier/daal.ChainReader.
func (r *Reader) BlockNumber(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	err := r.call(ctx, &n, "eth_blockNumber")
	return uint64(n), err
}

// CodeHash implements verifier/daal.ChainReader.
func (r *Reader) CodeHash(ctx context.Context) (common.Hash, int, error) {
	var code hexutil.Bytes
	if err := r.call(ctx, &code, "eth_getCode", r.contract, "latest"); err != nil {
		return common.Hash{}, 0, fmt.Errorf("read the contract's code: %w", err)
	}
	return crypto.Keccak256Hash(code), len(code), nil
}

// Events implements verifier/daal.ChainReader.
func (r *Reader) Events(ctx context.Context, from, to, step uint64) ([]types.Log, error) {
	return vdaal.ScanEvents(ctx, from, to, step, func(ctx context.Context, lo, hi uint64) ([]types.Log, error) {
		filter := map[string]any{
			"fromBlock": hexutil.Uint64(lo),
			"toBlock":   hexutil.Uint64(hi),
			"address":   []common.Address{r.contract},
			"topics":    [][]common.Hash{{vdaal.ActionLoggedTopic}},
		}
		var logs []types.Log
		err := r.call(ctx, &logs, "eth_getLogs", filter)
		return logs, err
	})
}

// TransactionByHash implements verifier/daal.ChainReader.
func (r *Reader) TransactionByHash(ctx context.Context, h common.Hash) (*types.Transaction, error) {
	var raw json.RawMessage
	if err := r.call(ctx, &raw, "eth_getTransactionByHash", h); err != nil {
		return nil, err
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ethereum.NotFound
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: %w", h, err)
	}
	if _, rr, _ := tx.RawSignatureValues(); rr == nil {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: the server returned a transaction without signature", h)
	}
	return tx, nil
}

// TransactionReceipt implements verifier/daal.ChainReader.
func (r *Reader) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	var rc types.Receipt
	if err := r.call(ctx, &rc, "eth_getTransactionReceipt", h); err != nil {
		return nil, err
	}
	return &rc, nil
}

// Dump implements verifier/daal.ChainReader: the answers of
// eth_getTransactionByHash and eth_getTransactionReceipt, verbatim.
func (r *Reader) Dump(ctx context.Context, h common.Hash) (*vdaal.ReceiptDump, error) {
	var tx, receipt json.RawMessage
	if err := r.call(ctx, &tx, "eth_getTransactionByHash", h); err != nil {
		return nil, fmt.Errorf("eth_getTransactionByHash %s: %w", h, err)
	}
	if err := r.call(ctx, &receipt, "eth_getTransactionReceipt", h); err != nil {
		return nil, fmt.Errorf("eth_getTransactionReceipt %s: %w", h, err)
	}
	return vdaal.NewReceiptDump(r.chainID, tx, receipt)
}

var _ vdaal.ChainReader = (*Reader)(nil)
