package daal

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
)

// TestEvidenceGolden verifies the committed split-view alert and refuses it
// once any part of it is changed.
func TestEvidenceGolden(t *testing.T) {
	var tf trustFile
	if err := json.Unmarshal(mustRead(t, "testdata/split-view-alert-v1.trust.json"), &tf); err != nil {
		t.Fatal(err)
	}
	raw := mustRead(t, "testdata/split-view-alert-v1.json")
	load := func() *Evidence {
		var a Alert
		if err := json.Unmarshal(raw, &a); err != nil || a.Kind != AlertSplitView || a.Evidence == nil {
			t.Fatalf("golden alert: %v", err)
		}
		return a.Evidence
	}
	if err := VerifyEvidence(load(), tf.trust(t)); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(e *Evidence, tr *Trust){
		"log root":      func(e *Evidence, _ *Trust) { e.LogRoot = e.OnChainRoot },
		"on-chain size": func(e *Evidence, _ *Trust) { e.OnChainSize++ },
		"consistency":   func(e *Evidence, _ *Trust) { e.Consistency[0][0] ^= 1 },
		"checkpoint":    func(e *Evidence, _ *Trust) { e.Checkpoint = strings.Replace(e.Checkpoint, "\n", "x\n", 1) },
		"sender":        func(_ *Evidence, tr *Trust) { tr.Sender = common.HexToAddress("0x01") },
		"contract":      func(_ *Evidence, tr *Trust) { tr.Contract = common.HexToAddress("0x01") },
		"no receipt":    func(e *Evidence, _ *Trust) { e.Receipt = nil },
	} {
		e, tr := load(), tf.trust(t)
		f(e, &tr)
		if err := VerifyEvidence(e, tr); err == nil {
			t.Errorf("%s changed: evidence still verifies", name)
		}
	}
}

func FuzzVerifyEvidence(f *testing.F) {
	if raw, err := os.ReadFile("testdata/split-view-alert-v1.json"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte(`{"kind":"split_view","evidence":{"receipt":null}}`))
	var tf trustFile
	json.Unmarshal(mustReadF(f, "testdata/split-view-alert-v1.trust.json"), &tf)
	v, _ := note.NewVerifier(tf.LogKey)
	tr := Trust{LogKey: v, ChainID: tf.ChainID, Contract: common.HexToAddress(tf.Contract), Sender: common.HexToAddress(tf.Sender)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a Alert
		if json.Unmarshal(raw, &a) != nil || a.Evidence == nil {
			return
		}
		VerifyEvidence(a.Evidence, tr) // must not panic
	})
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
