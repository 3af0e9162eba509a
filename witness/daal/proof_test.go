package daal

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

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

func (tf trustFile) trust(t *testing.T) Trust {
	t.Helper()
	v, err := note.NewVerifier(tf.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	return Trust{LogKey: v, ChainID: tf.ChainID, Contract: common.HexToAddress(tf.Contract), Sender: common.HexToAddress(tf.Sender)}
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
	p, err := Prove(e.ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Anchor.Size != first.Size || p.Anchor.TxHash != first.TxHash || len(p.Consistency) == 0 {
		t.Fatalf("proof anchor %+v", p.Anchor)
	}
	if err := VerifyProof(p, tf.trust(t), nil); err != nil {
		t.Fatal(err)
	}
	// ...and with the anchored checkpoint note itself when it has one.
	cfg.Ledger = e.ledger
	p2, err := Prove(e.ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Checkpoint != first.Checkpoint || len(p2.Consistency) != 0 {
		t.Fatal("the ledger's anchored checkpoint was not used")
	}
	if err := VerifyProof(p2, tf.trust(t), nil); err != nil {
		t.Fatal(err)
	}
	// Entry 7 is only in the second anchor.
	p3, err := Prove(e.ctx, cfg, 7)
	if err != nil || p3.Anchor.Size != 11 {
		t.Fatalf("entry 7: %v %+v", err, p3)
	}
	// Entry 11 is in no anchor yet.
	if _, err := Prove(e.ctx, cfg, 11); err == nil || !strings.Contains(err.Error(), "no verified anchor") {
		t.Fatalf("unanchored entry: %v", err)
	}
	// A round trip through the file format verifies; a receipt dump the
	// auditor fetched independently can replace the embedded one.
	back, err := ParseProof(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	dump, err := e.chain.Dump(e.ctx, common.HexToHash(p.Anchor.TxHash))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := ParseReceiptDump(dump.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(back, tf.trust(t), d2); err != nil {
		t.Fatal(err)
	}
	other, _ := e.chain.Dump(e.ctx, common.HexToHash(p3.Anchor.TxHash))
	if err := VerifyProof(back, tf.trust(t), other); err == nil {
		t.Fatal("a dump of another transaction was accepted")
	}
	if *update {
		os.WriteFile("testdata/proof-v1.json", p.Marshal(), 0o644)
		b, _ := json.MarshalIndent(tf, "", "  ")
		os.WriteFile("testdata/proof-v1.trust.json", append(b, '\n'), 0o644)
		os.WriteFile("testdata/receipt-dump-v1.json", dump.Marshal(), 0o644)
	}
}

func goldenProof(t *testing.T) ([]byte, trustFile) {
	t.Helper()
	raw := mustRead(t, "testdata/proof-v1.json")
	var tf trustFile
	if err := json.Unmarshal(mustRead(t, "testdata/proof-v1.trust.json"), &tf); err != nil {
		t.Fatal(err)
	}
	return raw, tf
}

// TestProofGolden verifies the committed vector, and that changing any
// part of it is caught by the check named.
func TestProofGolden(t *testing.T) {
	raw, tf := goldenProof(t)
	p, err := ParseProof(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(p, tf.trust(t), nil); err != nil {
		t.Fatal(err)
	}
	dump, err := ParseReceiptDump(mustRead(t, "testdata/receipt-dump-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(p, tf.trust(t), dump); err != nil {
		t.Fatal(err)
	}
	mutate := func(name, want string, f func(p *Proof, tr *Trust)) {
		t.Run(name, func(t *testing.T) {
			p, err := ParseProof(raw)
			if err != nil {
				t.Fatal(err)
			}
			tr := tf.trust(t)
			f(p, &tr)
			err = VerifyProof(p, tr, nil)
			if err == nil || !errors.Is(err, ErrProof) || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error about %q", err, want)
			}
		})
	}
	mutate("entry byte", "inclusion", func(p *Proof, _ *Trust) { p.Entry[0] ^= 1 })
	mutate("index", "inclusion", func(p *Proof, _ *Trust) { p.Index++ })
	mutate("inclusion hash", "inclusion", func(p *Proof, _ *Trust) { p.Inclusion[0][0] ^= 1 })
	mutate("consistency hash", "consistency", func(p *Proof, _ *Trust) { p.Consistency[0][0] ^= 1 })
	mutate("anchor root", "consistency", func(p *Proof, _ *Trust) { p.Anchor.Root = "0x" + strings.Repeat("11", 32) })
	mutate("checkpoint", "checkpoint", func(p *Proof, _ *Trust) { p.Checkpoint = strings.Replace(p.Checkpoint, "\n", "x\n", 1) })
	mutate("other log key", "log", func(p *Proof, tr *Trust) {
		_, vkey, _ := note.GenerateKey(nil, "other.example/log")
		tr.LogKey, _ = note.NewVerifier(vkey)
	})
	mutate("other sender", "sender", func(p *Proof, tr *Trust) { tr.Sender = common.HexToAddress("0x01") })
	mutate("other contract", "contract", func(p *Proof, tr *Trust) { tr.Contract = common.HexToAddress("0x01") })
	mutate("other chain", "chain", func(p *Proof, tr *Trust) { tr.ChainID = 1 })
	mutate("record id", "ActionLogged", func(p *Proof, _ *Trust) { p.Anchor.RecordID++ })
	mutate("block", "block", func(p *Proof, _ *Trust) { p.Anchor.Block++ })
	mutate("metadata", "logBatch", func(p *Proof, _ *Trust) { p.Anchor.Metadata = strings.Replace(p.Anchor.Metadata, `"v":1`, `"v":1 `, 1) })
	mutate("no receipt", "receipt", func(p *Proof, _ *Trust) { p.Receipt = nil })
}

// TestReceiptDumpTampering: a dump's parts must agree with each other.
func TestReceiptDumpTampering(t *testing.T) {
	raw := mustRead(t, "testdata/receipt-dump-v1.json")
	if _, err := ParseReceiptDump(raw); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	tx := doc["transaction"].(map[string]any)
	rc := doc["receipt"].(map[string]any)
	cases := map[string]func(){
		"from":          func() { tx["from"] = "0x0000000000000000000000000000000000000001" },
		"input":         func() { tx["input"] = tx["input"].(string)[:len(tx["input"].(string))-2] + "ff" },
		"receipt hash":  func() { rc["transactionHash"] = "0x" + strings.Repeat("22", 32) },
		"receipt block": func() { rc["blockHash"] = "0x" + strings.Repeat("22", 32) },
		"chain id":      func() { doc["chain_id"] = "0x1" },
		"log removed":   func() { rc["logs"].([]any)[0].(map[string]any)["removed"] = true },
	}
	for name, f := range cases {
		json.Unmarshal(raw, &doc)
		tx, rc = doc["transaction"].(map[string]any), doc["receipt"].(map[string]any)
		f()
		b, _ := json.Marshal(doc)
		if _, err := ParseReceiptDump(b); !errors.Is(err, ErrDump) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseReceiptDump(f *testing.F) {
	if raw, err := os.ReadFile("testdata/receipt-dump-v1.json"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte(`{"v":1,"chain_id":"0x539","transaction":null,"receipt":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseReceiptDump(raw)
		if err != nil {
			return
		}
		again, err := ParseReceiptDump(d.Marshal())
		if err != nil || again.TxHash() != d.TxHash() {
			t.Fatalf("re-marshalled dump: %v", err)
		}
	})
}

func FuzzParseProof(f *testing.F) {
	if raw, err := os.ReadFile("testdata/proof-v1.json"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParseProof(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), p.Marshal()) {
			t.Fatal("unstable")
		}
	})
}
