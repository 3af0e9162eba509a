package daal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
	"github.com/zt-infra/ztlog/verifier/legacy"
)

// legacyTD holds the legacy record vectors (verifier/legacy/legacy.md).
const legacyTD = "../../../testdata/legacy/"

// controlPlaneBatch is the golden logBatch anchor of the earlier control
// plane over the three records of control-plane-chain.jsonl.
type controlPlaneBatch struct {
	AgentID    string `json:"agent_id"`
	MerkleRoot string `json:"merkle_root"`
	Metadata   string `json:"metadata"`
}

func readBatchVector(t *testing.T) (controlPlaneBatch, [32]byte) {
	t.Helper()
	var v controlPlaneBatch
	if err := json.Unmarshal(mustRead(t, legacyTD+"control-plane-batch.json"), &v); err != nil {
		t.Fatal(err)
	}
	var root [32]byte
	if _, err := hex.Decode(root[:], []byte(strings.TrimPrefix(v.MerkleRoot, "0x"))); err != nil {
		t.Fatal(err)
	}
	return v, root
}

func onChainTx(t *testing.T, rep *vdaal.Report, tx common.Hash) vdaal.ChainAnchor {
	t.Helper()
	for _, ca := range rep.OnChain {
		if ca.TxHash == tx.Hex() {
			return ca
		}
	}
	t.Fatalf("tx %s is not in the report", tx.Hex())
	return vdaal.ChainAnchor{}
}

func alertsFor(rep *vdaal.Report, kind string, tx common.Hash) []vdaal.Alert {
	var out []vdaal.Alert
	for _, a := range alertsOf(rep, kind) {
		if a.TxHash == tx.Hex() {
			out = append(out, a)
		}
	}
	return out
}

// TestLegacyBatchAnchors: the earlier control plane's logBatch anchors,
// sent to the contract on the simulated chain (reached over JSON-RPC IPC)
// by a legacy sender, are each matched to the imported records they cover,
// or reported: a record missing, a record altered, records not imported,
// a root that matches nothing.
func TestLegacyBatchAnchors(t *testing.T) {
	e := newEnv(t)
	e.grow(1)
	chain, err := vdaal.ParseLegacyRecords(mustRead(t, legacyTD+"control-plane-chain.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := vdaal.ParseLegacyRecords(mustRead(t, legacyTD+"denied-audit.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, root := readBatchVector(t)
	contract := e.chain.Contract()
	send := func(root [32]byte, metadata string) common.Hash {
		data, err := daalog.PackLogBatch(v.AgentID, root, metadata)
		if err != nil {
			t.Fatal(err)
		}
		r := e.sendRaw(e.other, &contract, data, 0)
		if r.Status != 1 {
			t.Fatalf("logBatch reverted")
		}
		return r.TxHash
	}
	// The control plane's batch, byte for byte; the same root with
	// metadata that names nothing; a root that is no batch of these records.
	golden := send(root, v.Metadata)
	bare := send(root, "")
	bogus := send(sha256.Sum256([]byte("no batch")), v.Metadata)
	e.anchorOnce(e.anchorer(nil))
	legacySender := crypto.PubkeyToAddress(e.other.PublicKey)
	with := func(recs []legacy.Record) func(*vdaal.ReconcileConfig) {
		return func(c *vdaal.ReconcileConfig) { c.Legacy = recs; c.LegacySenders = []common.Address{legacySender} }
	}

	t.Run("all records match", func(t *testing.T) {
		rep := e.reconcile(with(chain))
		ca := onChainTx(t, rep, golden)
		if ca.Verdict != "legacy" {
			t.Errorf("verdict %q, want legacy", ca.Verdict)
		}
		if ca.Finding != "matched" {
			t.Errorf("finding %q (%s), want matched", ca.Finding, ca.Reason)
		}
		if !slices.Equal(ca.LegacyRecords, []int{1, 2, 3}) {
			t.Errorf("records %v, want [1 2 3]", ca.LegacyRecords)
		}
		if ca.AgentID != v.AgentID {
			t.Errorf("agent id %q, want %q", ca.AgentID, v.AgentID)
		}
		b := onChainTx(t, rep, bare)
		if b.Finding != "matched" {
			t.Errorf("metadata-less batch: finding %q (%s), want matched by content", b.Finding, b.Reason)
		}
		if !slices.Equal(b.LegacyRecords, []int{1, 2, 3}) {
			t.Errorf("metadata-less batch: records %v, want [1 2 3]", b.LegacyRecords)
		}
		if n := len(alertsFor(rep, vdaal.AlertLegacyBatchUnmatched, golden)) + len(alertsFor(rep, vdaal.AlertLegacyBatchUnmatched, bare)); n != 0 {
			t.Errorf("%d unmatched alerts for matching batches", n)
		}
		if rep.Legacy.BatchesMatched != 2 {
			t.Errorf("batches matched %d, want 2", rep.Legacy.BatchesMatched)
		}
		if rep.Legacy.Unanchored != 0 {
			t.Errorf("records without anchor %d, want 0", rep.Legacy.Unanchored)
		}
	})

	t.Run("root matches nothing", func(t *testing.T) {
		rep := e.reconcile(with(chain))
		ca := onChainTx(t, rep, bogus)
		if ca.Finding != "unmatched" {
			t.Errorf("finding %q, want unmatched", ca.Finding)
		}
		al := alertsFor(rep, vdaal.AlertLegacyBatchUnmatched, bogus)
		if len(al) != 1 {
			t.Fatalf("%d legacy_batch_unmatched alerts for the bogus root, want 1 (alerts %+v)", len(al), rep.Alerts)
		}
		if !strings.Contains(al[0].Message, "matches nothing") {
			t.Errorf("alert %q does not say the root matches nothing", al[0].Message)
		}
		if len(rep.Alerts) != 1 {
			t.Errorf("alerts %+v, want only the bogus root's", rep.Alerts)
		}
		if rep.Legacy.BatchesUnmatched != 1 {
			t.Errorf("batches unmatched %d, want 1", rep.Legacy.BatchesUnmatched)
		}
	})

	t.Run("a record missing", func(t *testing.T) {
		gone := []legacy.Record{chain[0], chain[2]}
		rep := e.reconcile(with(gone))
		ca := onChainTx(t, rep, golden)
		if ca.Finding != "record_missing" {
			t.Errorf("finding %q, want record_missing", ca.Finding)
		}
		al := alertsFor(rep, vdaal.AlertLegacyRecordMissing, golden)
		if len(al) != 1 {
			t.Fatalf("%d legacy_record_missing alerts, want 1 (alerts %+v)", len(al), rep.Alerts)
		}
		if want := "0x" + chain[1].Audit.CurrentHash; !strings.Contains(al[0].Message, want) {
			t.Errorf("alert %q does not name the missing record's hash %s", al[0].Message, want)
		}
		if rep.Legacy.BatchesRecordMissing != 1 {
			t.Errorf("batches with a record missing %d, want 1", rep.Legacy.BatchesRecordMissing)
		}
	})

	t.Run("a record altered", func(t *testing.T) {
		altered := slices.Clone(chain)
		altered[1].Reason = json.RawMessage(`"Destructive statements are fine."`)
		rep := e.reconcile(with(altered))
		ca := onChainTx(t, rep, golden)
		if ca.Finding != "tampered" {
			t.Errorf("finding %q, want tampered", ca.Finding)
		}
		al := alertsFor(rep, vdaal.AlertLegacyTampered, golden)
		if len(al) != 1 {
			t.Fatalf("%d legacy_tampered alerts for the batch, want 1 (alerts %+v)", len(al), rep.Alerts)
		}
		if !strings.Contains(al[0].Message, "legacy record 2 ") {
			t.Errorf("alert %q does not name record 2", al[0].Message)
		}
		if rep.Legacy.BatchesTampered < 1 {
			t.Errorf("batches tampered %d, want at least 1", rep.Legacy.BatchesTampered)
		}
	})

	t.Run("covers records not present", func(t *testing.T) {
		rep := e.reconcile(with(other))
		ca := onChainTx(t, rep, golden)
		if ca.Finding != "without_records" {
			t.Errorf("finding %q, want without_records", ca.Finding)
		}
		if len(alertsFor(rep, vdaal.AlertLegacyRecordMissing, golden)) != 0 {
			t.Errorf("a batch none of whose records was imported raised legacy_record_missing")
		}
		var noticed bool
		for _, n := range rep.Notices {
			noticed = noticed || strings.Contains(n, golden.Hex()) && strings.Contains(n, `"cp-host-1"`)
		}
		if !noticed {
			t.Errorf("no notice names the batch and its host: %q", rep.Notices)
		}
		if rep.Legacy.BatchesWithoutRecords != 1 {
			t.Errorf("batches without records %d, want 1", rep.Legacy.BatchesWithoutRecords)
		}
		if rep.Legacy.Unanchored != 1 {
			t.Errorf("records without anchor %d, want 1 (the imported record no batch covers)", rep.Legacy.Unanchored)
		}
	})
}
