package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/anchor/daal"
	"github.com/zt-infra/ztlog/log/storage/posix"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// daalWorld is a log in a temp dir, written by this process, and DAALog on
// a simulated chain that this process mines every 50ms, reached by the
// binaries over a JSON-RPC IPC socket.
type daalWorld struct {
	ipc, contract, keystore, passFile, sender string
	fromBlock                                 uint64
	logDir, vkey, dataDir                     string
	log                                       *ztlog.Log
	stop                                      func()
	// sim is the chain; legacyKey a funded account standing for the
	// earlier system's sender.
	sim       *simulated.Backend
	legacyKey *ecdsa.PrivateKey
}

func newDAALWorld(t *testing.T) *daalWorld {
	t.Helper()
	ctx := context.Background()
	w := &daalWorld{dataDir: t.TempDir()}
	keys := t.TempDir()
	w.passFile = filepath.Join(keys, "pass")
	os.WriteFile(w.passFile, []byte("correct horse\n"), 0o600)
	w.keystore = filepath.Join(keys, "daal.key")
	// The key is made by the command operators use.
	out, err := exec.Command(ztlogBin, "daal", "keygen", "--out", w.keystore, "--passphrase-file", w.passFile).Output()
	if err != nil {
		t.Fatalf("daal keygen: %v", err)
	}
	w.sender = strings.TrimSpace(string(out))
	signer, err := daal.LoadKeystore(w.keystore, w.passFile)
	if err != nil || signer.Address().Hex() != w.sender {
		t.Fatalf("keystore: %v (%s vs %s)", err, signer.Address().Hex(), w.sender)
	}

	sock, err := os.MkdirTemp("", "daal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	w.ipc = filepath.Join(sock, "sim.ipc")
	w.legacyKey, _ = crypto.GenerateKey()
	funds := new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))
	sim := simulated.NewBackend(types.GenesisAlloc{signer.Address(): {Balance: funds}, crypto.PubkeyToAddress(w.legacyKey.PublicKey): {Balance: funds}},
		func(nc *node.Config, ec *ethconfig.Config) {
			nc.IPCPath = w.ipc
			cc := *ec.Genesis.Config
			cc.BogotaTime = nil
			ec.Genesis.Config = &cc
		})
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // blocks every 50ms
		defer wg.Done()
		for mctx.Err() == nil {
			sim.Commit()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	w.sim = sim
	w.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(func() { w.stop(); sim.Close() })

	// Deploy with the command operators use.
	out, err = exec.Command(ztlogBin, "daal", "deploy", "--rpc", w.ipc, "--keystore", w.keystore, "--passphrase-file", w.passFile, "--timeout", "30s").CombinedOutput()
	if err != nil {
		t.Fatalf("daal deploy: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "contract" {
			w.contract = f[1]
		}
		if len(f) == 2 && f[0] == "block" {
			fmt.Sscan(f[1], &w.fromBlock)
		}
	}
	if w.contract == "" {
		t.Fatalf("deploy printed no contract:\n%s", out)
	}

	w.logDir = filepath.Join(w.dataDir, "log")
	skey, vkey, _ := ztlog.GenerateKey("daal.test/log")
	k, _ := ztlog.ParseKey(skey)
	w.vkey = vkey
	b, err := posix.Open(ctx, posix.Config{Dir: w.logDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: k, CheckpointInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.log = l
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Close(c)
	})
	return w
}

func (w *daalWorld) chainFlags() []string {
	return []string{"--rpc", w.ipc, "--contract", w.contract, "--from-block", fmt.Sprint(w.fromBlock), "--log-key", w.vkey}
}

func (w *daalWorld) anchorArgs() []string {
	return append([]string{"daal", "anchor", "--keystore", w.keystore, "--passphrase-file", w.passFile, "--data-dir", w.dataDir,
		"--poll", "30ms", "--interval", "100ms", "--confirmations", "1", "--reconcile-interval", "0", "--log-level", "info"}, w.chainFlags()...)
}

func (w *daalWorld) ledger(t *testing.T) []*vdaal.Anchor {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(w.dataDir, "daal", "anchors.jsonl"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	as, _, err := vdaal.ParseLedger(raw)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestDAALAnchorSurvivesSIGKILL kills `ztlog daal anchor` with SIGKILL at
// random moments while the log grows and blocks are mined, restarts it, and
// checks nothing was anchored twice and nothing was lost.
func TestDAALAnchorSurvivesSIGKILL(t *testing.T) {
	w := newDAALWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the log grows
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 2000; i++ {
			w.log.Append(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i)))
			time.Sleep(15 * time.Millisecond)
		}
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 8; i++ {
		p := startDAAL(t, w.anchorArgs()...)
		// Kill it at a random moment once it is running (decrypting the
		// keystore takes a while).
		waitFor(t, p, `"msg":"anchoring"`)
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
	cancel()
	wg.Wait()
	// Everything appended is published within a few checkpoint intervals;
	// read the final checkpoint from storage, as the anchorer does.
	time.Sleep(500 * time.Millisecond)
	src, _ := daal.OpenSource(w.logDir)
	tree, err := vdaal.NewTree(src, w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	final, err := tree.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The last run: anchors until the final checkpoint is confirmed (its
	// metrics say so too), then stops on SIGTERM.
	metricsAddr := devproc.FreeAddr(t)
	p := startDAAL(t, append(w.anchorArgs(), "--metrics-listen", metricsAddr)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		as := w.ledger(t)
		if n := len(as); n > 0 && as[n-1].Size == final.Size && as[n-1].State == vdaal.Confirmed {
			break
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(as, "", " ")
			t.Fatalf("final checkpoint (size %d) not anchored; ledger %s\nstderr: %s", final.Size, b, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("ztlog_daal_anchored_size{state=\"confirmed\"} %d\n", final.Size); !strings.Contains(string(metrics), want) {
		t.Fatalf("/metrics lacks %q:\n%s", want, metrics)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("anchor after SIGTERM: %v\n%s", err, p.output())
	}

	// Reconcile with the command: every anchor verified, no alert.
	args := append([]string{"daal", "reconcile", "--json", "--keystore", w.keystore, "--passphrase-file", w.passFile, "--data-dir", w.dataDir}, w.chainFlags()...)
	out, err := exec.Command(ztlogBin, args...).Output()
	if err != nil {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	var rep vdaal.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	ledger := w.ledger(t)
	byTx := map[string]*vdaal.Anchor{}
	for _, a := range ledger {
		if a.State != vdaal.Confirmed || a.Attestation != vdaal.Verified {
			t.Errorf("ledger anchor %d: %s/%s %s", a.ID, a.State, a.Attestation, a.Reason)
		}
		byTx[a.TxHash] = a
	}
	sizes := map[uint64]bool{}
	for _, ca := range rep.OnChain {
		if ca.Verdict != "verified" {
			t.Errorf("on chain %s: %s %s", ca.TxHash, ca.Verdict, ca.Reason)
		}
		if sizes[ca.Size] {
			t.Errorf("size %d anchored twice", ca.Size)
		}
		sizes[ca.Size] = true
		if byTx[ca.TxHash] == nil {
			t.Errorf("on-chain anchor %s is not in the ledger", ca.TxHash)
		}
	}
	if len(rep.OnChain) != len(ledger) || len(ledger) < 2 {
		t.Fatalf("%d anchors on chain, %d in the ledger", len(rep.OnChain), len(ledger))
	}
	t.Logf("%d anchors over 8 SIGKILLs, final size %d", len(ledger), final.Size)

	// An auditor proves entry 0 and verifies it offline.
	audit := buildZtAudit(t)
	proofFile := filepath.Join(t.TempDir(), "proof.json")
	out, err = exec.Command(audit, append([]string{"daal", "prove", "--index", "0", "--sender", w.sender, "--log", w.logDir, "--out", proofFile}, w.chainFlags()...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("prove: %v\n%s", err, out)
	}
	verify := func(file string) (int, string) {
		cmd := exec.Command(audit, "daal", "verify", file, "--log-key", w.vkey, "--chain-id", "1337", "--contract", w.contract, "--sender", w.sender)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := verify(proofFile); code != 0 || !strings.Contains(out, "VERIFIED: entry 0") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	raw, _ := os.ReadFile(proofFile)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	doc["index"] = 1
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	b, _ := json.Marshal(doc)
	os.WriteFile(tampered, b, 0o644)
	if code, out := verify(tampered); code != 1 || !strings.Contains(out, "inclusion") {
		t.Fatalf("tampered proof: exit %d\n%s", code, out)
	}
	if code, _ := verify(filepath.Join(t.TempDir(), "missing.json")); code != 2 {
		t.Fatalf("missing proof file: exit %d, want 2", code)
	}
	// The anchorer refuses a contract that is not ztlog's DAALog (here: an
	// account with no code).
	bad := []string{"daal", "anchor", "--once", "--keystore", w.keystore, "--passphrase-file", w.passFile, "--data-dir", t.TempDir(),
		"--rpc", w.ipc, "--contract", w.sender, "--log", w.logDir, "--log-key", w.vkey}
	if out, err := exec.Command(ztlogBin, bad...).CombinedOutput(); err == nil || !strings.Contains(string(out), "refusing to anchor") {
		t.Fatalf("anchor to a non-contract: %v\n%s", err, out)
	}
	// The auditor's chain-wide check agrees.
	out, err = exec.Command(audit, append([]string{"daal", "check", "--sender", w.sender, "--log", w.logDir}, w.chainFlags()...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("zt-audit daal check: %v\n%s", err, out)
	}
}

// daalProc is a running ztlog whose stderr can be read while it runs.
type daalProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr []byte
}

func (p *daalProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stderr = append(p.stderr, b...)
	return len(b), nil
}

func (p *daalProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.stderr)
}

func startDAAL(t *testing.T, args ...string) *daalProc {
	t.Helper()
	p := &daalProc{cmd: exec.Command(ztlogBin, args...)}
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

// waitFor waits until the process's stderr contains s.
func waitFor(t *testing.T, p *daalProc, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not seen; stderr:\n%s", s, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func buildZtAudit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zt-audit")
	if out, err := exec.Command("go", "build", "-o", bin, "../zt-audit").CombinedOutput(); err != nil {
		t.Fatalf("build zt-audit: %v\n%s", err, out)
	}
	return bin
}
