package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// sendLegacyBatch sends the earlier control plane's logBatch from the
// world's legacy account and waits until it is mined.
func (w *daalWorld) sendLegacyBatch(t *testing.T, agentID string, root [32]byte, metadata string) common.Hash {
	t.Helper()
	ctx := context.Background()
	c := w.sim.Client()
	data, err := daalog.PackLogBatch(agentID, root, metadata)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := c.PendingNonceAt(ctx, crypto.PubkeyToAddress(w.legacyKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := c.ChainID(ctx)
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress(w.contract)
	tip := big.NewInt(params.GWei)
	fee := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	tx := types.MustSignNewTx(w.legacyKey, types.LatestSignerForChainID(id),
		&types.DynamicFeeTx{ChainID: id, Nonce: nonce, GasTipCap: tip, GasFeeCap: fee, Gas: 3_000_000, To: &to, Data: data})
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := c.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != 1 {
				t.Fatal("logBatch reverted")
			}
			return tx.Hash()
		}
		if time.Now().After(deadline) {
			t.Fatalf("logBatch %s not mined: %v", tx.Hash().Hex(), err)
		}
	}
}

// TestDAALCheckLegacyBatch: `zt-audit daal check` (the built binary, over
// JSON-RPC IPC to the simulated chain) reports the earlier control plane's
// logBatch anchor as matched with its records, and a record removed from
// the import as legacy_record_missing (exit 1).
func TestDAALCheckLegacyBatch(t *testing.T) {
	w := newDAALWorld(t)
	const td = "../../testdata/legacy/"
	var v struct {
		AgentID    string `json:"agent_id"`
		MerkleRoot string `json:"merkle_root"`
		Metadata   string `json:"metadata"`
	}
	raw, err := os.ReadFile(td + "control-plane-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var root [32]byte
	if _, err := hex.Decode(root[:], []byte(strings.TrimPrefix(v.MerkleRoot, "0x"))); err != nil {
		t.Fatal(err)
	}
	tx := w.sendLegacyBatch(t, v.AgentID, root, v.Metadata)
	legacySender := crypto.PubkeyToAddress(w.legacyKey.PublicKey).Hex()
	audit := buildZtAudit(t)
	check := func(records string, extra ...string) (int, string) {
		args := append([]string{"daal", "check", "--sender", w.sender, "--log", w.logDir, "--legacy", records, "--legacy-sender", legacySender}, w.chainFlags()...)
		cmd := exec.Command(audit, append(args, extra...)...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}

	code, out := check(td + "control-plane-chain.jsonl")
	if code != 0 {
		t.Fatalf("all records imported: exit %d, want 0\n%s", code, out)
	}
	if want := "legacy batch  matched         "; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
	if want := "tx " + tx.Hex() + ": matches legacy records 1, 2, 3 (2026-04-30T10:00:00.000Z to 2026-04-30T10:00:02.500Z)"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}

	code, out = check(td+"control-plane-chain.jsonl", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d\n%s", code, out)
	}
	var rep vdaal.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if rep.Legacy == nil || rep.Legacy.BatchesMatched != 1 {
		t.Errorf("--json legacy summary %+v, want one batch matched", rep.Legacy)
	}

	// The import lacks the second record.
	lines := strings.SplitAfter(string(mustReadFile(t, td+"control-plane-chain.jsonl")), "\n")
	partial := filepath.Join(t.TempDir(), "partial.jsonl")
	if err := os.WriteFile(partial, []byte(lines[0]+lines[2]), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = check(partial)
	if code != 1 {
		t.Fatalf("a record missing: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "ALERT [legacy_record_missing]") {
		t.Errorf("report lacks the legacy_record_missing alert:\n%s", out)
	}
	if want := "legacy batch  record_missing"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
