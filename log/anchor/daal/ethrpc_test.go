package daal

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
	"github.com/zt-infra/ztlog/verifier/daal/ethrpc"
)

// ipcOverHTTP serves JSON-RPC over HTTP by passing each request body to
// the node's IPC socket and its one answer back: the node's own answers,
// over the HTTP transport an auditor uses with a public endpoint.
func ipcOverHTTP(t *testing.T, ipc string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		conn, err := net.Dial("unix", ipc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer conn.Close()
		conn.Write(body)
		var answer json.RawMessage
		if err := json.NewDecoder(conn).Decode(&answer); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestJSONRPCReaderAgreesWithEthclient: zt-audit reads the chain with
// verifier/daal/ethrpc, the anchorer with go-ethereum's client. On the same
// chain, over IPC and over HTTP, the auditor's reconciliation report, the
// receipt dumps and the answers for unknown transactions are the same.
func TestJSONRPCReaderAgreesWithEthclient(t *testing.T) {
	e := newEnv(t)
	cp := e.grow(4)
	e.anchorOnce(e.anchorer(nil))
	e.grow(2)
	// A split view, so the report carries evidence with a receipt dump.
	contract := e.chain.Contract()
	forged := sha256.Sum256([]byte("forged"))
	meta := vdaal.Metadata{Size: cp.Size, Checkpoint: sha256.Sum256(vdaal.CheckpointBody(testOrigin, cp.Size, forged[:]))}
	data, _ := daalog.PackLogBatch(testOrigin, forged, meta.Marshal())
	forgedTx := e.sendRaw(e.key, &contract, data, 0)

	auditor := func(c vdaal.ChainReader) []byte {
		t.Helper()
		cfg := e.reconcileConfig()
		cfg.Ledger, cfg.Chain = nil, c
		rep, err := vdaal.Reconcile(e.ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rep)
		return b
	}
	want := auditor(e.chain)
	wantDump, err := e.chain.Dump(e.ctx, forgedTx.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(want, []byte(`"kind":"split_view"`)) {
		t.Fatalf("setup: the ethclient report has no split view: %s", want)
	}
	for name, endpoint := range map[string]string{"ipc": e.ipc, "http": ipcOverHTTP(t, e.ipc)} {
		t.Run(name, func(t *testing.T) {
			r, err := ethrpc.Dial(e.ctx, endpoint, contract)
			if err != nil {
				t.Fatal(err)
			}
			if r.ChainID().Cmp(e.chain.ChainID()) != 0 {
				t.Fatalf("chain id %s, ethclient says %s", r.ChainID(), e.chain.ChainID())
			}
			if got := auditor(r); !bytes.Equal(got, want) {
				t.Fatalf("report differs from ethclient's:\n got %s\nwant %s", got, want)
			}
			d, err := r.Dump(e.ctx, forgedTx.TxHash)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Marshal(), wantDump.Marshal()) {
				t.Fatalf("receipt dump differs from ethclient's")
			}
			unknown := common.HexToHash("0x" + "11223344556677889900aabbccddeeff11223344556677889900aabbccddeeff")
			if _, err := r.TransactionReceipt(e.ctx, unknown); !errors.Is(err, ethereum.NotFound) {
				t.Fatalf("receipt of an unknown transaction: %v, want ethereum.NotFound", err)
			}
			if _, err := r.TransactionByHash(e.ctx, unknown); !errors.Is(err, ethereum.NotFound) {
				t.Fatalf("unknown transaction: %v, want ethereum.NotFound", err)
			}
			if _, err := r.Dump(e.ctx, unknown); !errors.Is(err, ethereum.NotFound) {
				t.Fatalf("dump of an unknown transaction: %v, want ethereum.NotFound", err)
			}
		})
	}
	if _, err := ethrpc.Dial(e.ctx, "ws://127.0.0.1:1", contract); err == nil {
		t.Fatal("a websocket endpoint was accepted")
	}
}
