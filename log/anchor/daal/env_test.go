package daal

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

const testOrigin = "test.example/daal"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	klog.SetSlogLogger(quiet)
	os.Exit(m.Run())
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a real log in a temp dir and DAALog on go-ethereum's simulated
// chain.
type env struct {
	t        testing.TB
	ctx      context.Context
	sim      *simulated.Backend
	chain    *Chain
	key      *ecdsa.PrivateKey
	signer   *KeySigner
	other    *ecdsa.PrivateKey // another funded account
	contract common.Address
	log      *ztlog.Log
	logDir   string
	vkey     string
	tree     *vdaal.Tree
	ledger   *Ledger
	ledgerD  string
	clock    *clock
	rpc      *rpc.Client
	ipc      string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	funds := new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))
	// The chain is reached over a real JSON-RPC transport: IPC on a Unix
	// socket (short path: sockets are limited to about 100 bytes).
	sockDir, err := os.MkdirTemp("", "daal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	ipc := filepath.Join(sockDir, "sim.ipc")
	sim := simulated.NewBackend(types.GenesisAlloc{
		crypto.PubkeyToAddress(key.PublicKey):   {Balance: funds},
		crypto.PubkeyToAddress(other.PublicKey): {Balance: funds},
	}, func(nc *node.Config, ec *ethconfig.Config) {
		nc.IPCPath = ipc
		// Osaka rules, as public chains run today: the dev chain also
		// enables forks still in development that reprice storage.
		cc := *ec.Genesis.Config
		cc.BogotaTime = nil
		ec.Genesis.Config = &cc
	})
	t.Cleanup(func() { sim.Close() })
	rc, err := rpc.Dial(ipc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	e := &env{t: t, ctx: ctx, sim: sim, key: key, other: other, signer: NewKeySigner(key),
		clock: &clock{t: time.Now()}, rpc: rc, ipc: ipc}
	r := e.sendRaw(key, nil, daalog.DeployCode(), 0)
	if r.Status != 1 {
		t.Fatal("deploy failed")
	}
	e.contract = r.ContractAddress
	e.chain = e.chainAt(e.contract)

	e.logDir = t.TempDir()
	skey, vkey, err := ztlog.GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	e.vkey = vkey
	k, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := posix.Open(ctx, posix.Config{Dir: e.logDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: k, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.log = l
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Close(c)
	})
	e.tree, err = vdaal.NewTree(l, vkey)
	if err != nil {
		t.Fatal(err)
	}
	e.ledgerD = t.TempDir()
	e.openLedger()
	return e
}

func (e *env) openLedger() {
	e.t.Helper()
	l, err := OpenLedger(e.ledgerD)
	if err != nil {
		e.t.Fatal(err)
	}
	e.ledger = l
	e.t.Cleanup(func() { l.Close() })
}

// restart closes the ledger as a dying process would and opens it again.
func (e *env) restart() {
	e.t.Helper()
	e.ledger.Close()
	e.openLedger()
}

func (e *env) chainAt(addr common.Address) *Chain {
	e.t.Helper()
	c, err := NewChain(e.ctx, e.rpc, addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// sendRaw sends a transaction from key and mines it.
func (e *env) sendRaw(key *ecdsa.PrivateKey, to *common.Address, data []byte, gas uint64) *types.Receipt {
	e.t.Helper()
	tx := e.signRaw(key, to, data, gas)
	if err := e.sim.Client().SendTransaction(e.ctx, tx); err != nil {
		e.t.Fatal(err)
	}
	e.sim.Commit()
	r, err := e.sim.Client().TransactionReceipt(e.ctx, tx.Hash())
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) signRaw(key *ecdsa.PrivateKey, to *common.Address, data []byte, gas uint64) *types.Transaction {
	e.t.Helper()
	c := e.sim.Client()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := c.PendingNonceAt(e.ctx, from)
	if err != nil {
		e.t.Fatal(err)
	}
	if gas == 0 {
		gas = 3_000_000
	}
	head, _ := c.HeaderByNumber(e.ctx, nil)
	tip := big.NewInt(params.GWei)
	fee := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	id, _ := c.ChainID(e.ctx)
	return types.MustSignNewTx(key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{ChainID: id, Nonce: nonce, GasTipCap: tip, GasFeeCap: fee, Gas: gas, To: to, Data: data})
}

// grow appends n entries and waits until a published checkpoint covers
// them.
func (e *env) grow(n int) *vdaal.Checkpoint {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	var last uint64
	for i := 0; i < n; i++ {
		idx, err := e.log.Append(ctx, []byte{byte(i), 'e', byte(time.Now().UnixNano())})
		if err != nil {
			e.t.Fatal(err)
		}
		last = idx
	}
	if _, err := e.log.Await(ctx, last); err != nil {
		e.t.Fatal(err)
	}
	// The tree reads the published checkpoint itself.
	for {
		cp, err := e.tree.Checkpoint(ctx)
		if err == nil && cp.Size > last {
			return cp
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("checkpoint not published")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *env) anchorer(mod func(*AnchorConfig)) *Anchorer {
	e.t.Helper()
	cfg := AnchorConfig{Tree: e.tree, Chain: e.chain, Signer: e.signer, Ledger: e.ledger,
		Confirmations: 1, Interval: time.Minute, Now: e.clock.Now, Logger: quiet}
	if mod != nil {
		mod(&cfg)
	}
	a, err := NewAnchorer(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) step(a *Anchorer) {
	e.t.Helper()
	if err := a.Step(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reconcileConfig() vdaal.ReconcileConfig {
	return vdaal.ReconcileConfig{Tree: e.tree, Chain: e.chain, Sender: e.signer.Address(), Ledger: e.ledger, Now: e.clock.Now,
		ExpectedCodeHash: daalog.RuntimeCodeHash}
}

func (e *env) reconcile(mod func(*vdaal.ReconcileConfig)) *vdaal.Report {
	e.t.Helper()
	cfg := e.reconcileConfig()
	if mod != nil {
		mod(&cfg)
	}
	rep, err := vdaal.Reconcile(e.ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func (e *env) only(id uint64) vdaal.Anchor {
	e.t.Helper()
	a, ok := e.ledger.Get(id)
	if !ok {
		e.t.Fatalf("no anchor %d", id)
	}
	return a
}

// ourEvents counts ActionLogged events sent by the anchoring key.
func (e *env) ourEvents() []vdaal.ChainAnchor {
	e.t.Helper()
	rep := e.reconcile(func(c *vdaal.ReconcileConfig) { c.Ledger = nil })
	var out []vdaal.ChainAnchor
	for _, ca := range rep.OnChain {
		if ca.Sender == e.signer.Address().Hex() {
			out = append(out, ca)
		}
	}
	return out
}

func alertsOf(rep *vdaal.Report, kind string) []vdaal.Alert {
	var out []vdaal.Alert
	for _, a := range rep.Alerts {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

var errCrash = errors.New("crash (test)")

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseSigned verifies a checkpoint note with the env's log key.
func parseSigned(t *testing.T, e *env, raw []byte) *vdaal.Checkpoint {
	t.Helper()
	v, err := note.NewVerifier(e.vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, testOrigin, v)
	if err != nil {
		t.Fatal(err)
	}
	return &vdaal.Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: raw}
}

// td holds the golden vectors, verifier/daal's: the tests here (re)make
// them with -update from a simulated chain.
const td = "../../../verifier/daal/testdata/"
