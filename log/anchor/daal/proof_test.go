package daal

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite testdata/proof-v1.json and its trust file from a fresh simulated chain")

// trustFile is the auditor's side of the golden proof vector.
type trustFile struct {
	LogKey   string `json:"log_key"`
	ChainID  uint64 `json:"chain_id"`
	Contract string `json:"contract"`
	Sender   string `json:"sender"`
}

func (tf trustFile) trust(t *testing.T) vdaal.Trust {
	t.Helper()
	v, err := note.NewVerifier(tf.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	return vdaal.Trust{LogKey: v, ChainID: tf.ChainID, Contract: common.HexToAddress(tf.Contract), Sender: common.HexToAddress(tf.Sender)}
}

func (e *env) trustFile() trustFile {
	return trustFile{LogKey: e.vkey, ChainID: e.chain.ChainID().Uint64(), Contract: e.chain.Contract().Hex(), Sender: e.signer.Address().Hex()}
}

func TestProveAndVerifyOffline(t *testing.T) {
	e := newEnv(t)
	e.grow(5)
	a := e.anchorer(nil)
	first := e.anchorOnce(a)
	e.grow(6)
	e.clock.Advance(2 * time.Minute)
	e.anchorOnce(a)
	e.grow(2) // the newest entries are not anchored yet

	cfg := e.reconcileConfig()
	tf := e.trustFile()
	// Entry 3 is in the first anchor; proven into the current checkpoint by
	// a consistency proof when the prover has no ledger...
	cfg.Ledger = nil
	p, err := vdaal.Prove(e.ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Anchor.Size != first.Size || p.Anchor.TxHash != first.TxHash || len(p.Consistency) == 0 {
		t.Fatalf("proof anchor %+v", p.Anchor)
	}
	if err := vdaal.VerifyProof(p, tf.trust(t), nil); err != nil {
		t.Fatal(err)
	}
	// ...and with the anchored checkpoint note itself when it has one.
	cfg.Ledger = e.ledger
	p2, err := vdaal.Prove(e.ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Checkpoint != first.Checkpoint || len(p2.Consistency) != 0 {
		t.Fatal("the ledger's anchored checkpoint was not used")
	}
	if err := vdaal.VerifyProof(p2, tf.trust(t), nil); err != nil {
		t.Fatal(err)
	}
	// Entry 7 is only in the second anchor.
	p3, err := vdaal.Prove(e.ctx, cfg, 7)
	if err != nil || p3.Anchor.Size != 11 {
		t.Fatalf("entry 7: %v %+v", err, p3)
	}
	// Entry 11 is in no anchor yet.
	if _, err := vdaal.Prove(e.ctx, cfg, 11); err == nil || !strings.Contains(err.Error(), "no verified anchor") {
		t.Fatalf("unanchored entry: %v", err)
	}
	// A round trip through the file format verifies; a receipt dump the
	// auditor fetched independently can replace the embedded one.
	back, err := vdaal.ParseProof(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	dump, err := e.chain.Dump(e.ctx, common.HexToHash(p.Anchor.TxHash))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := vdaal.ParseReceiptDump(dump.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := vdaal.VerifyProof(back, tf.trust(t), d2); err != nil {
		t.Fatal(err)
	}
	other, _ := e.chain.Dump(e.ctx, common.HexToHash(p3.Anchor.TxHash))
	if err := vdaal.VerifyProof(back, tf.trust(t), other); err == nil {
		t.Fatal("a dump of another transaction was accepted")
	}
	if *update {
		os.WriteFile(td+"proof-v1.json", p.Marshal(), 0o644)
		b, _ := json.MarshalIndent(tf, "", "  ")
		os.WriteFile(td+"proof-v1.trust.json", append(b, '\n'), 0o644)
		os.WriteFile(td+"receipt-dump-v1.json", dump.Marshal(), 0o644)
	}
}
