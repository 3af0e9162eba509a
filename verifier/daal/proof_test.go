package daal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
)

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

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	mutate("metadata", "logBatch", func(p *Proof, _ *Trust) {
		p.Anchor.Metadata = strings.Replace(p.Anchor.Metadata, `"v":1`, `"v":1 `, 1)
	})
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
