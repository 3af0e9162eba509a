package proof_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/proof"
)

var update = flag.Bool("update", false, "rewrite the vectors in testdata/tlog-proof/ztlog")

const ztlogVectors = "../../testdata/tlog-proof/ztlog"

// TEST VECTOR KEYS: derived from public seed strings; never trust them.
func testVectorKey(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("ztlog test vector key: " + label))
	return ed25519.NewKeyFromSeed(s[:])
}

func vkey(name string, typ byte, pub ed25519.PublicKey) (string, uint32) {
	k := append([]byte{typ}, pub...)
	h := sha256.Sum256(append([]byte(name+"\n"), k...))
	id := binary.BigEndian.Uint32(h[:4])
	return fmt.Sprintf("%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(k)), id
}

const (
	vectorOrigin  = "example.com/ztlog-vectors"
	vectorWitness = "witness.example/w1"
	vectorTime    = 1795000000 // the witness's cosignature timestamp
)

// vectorCheckpoint signs text with the log key (Ed25519 signatures are
// deterministic) and cosigns it with the witness at a fixed time.
func vectorCheckpoint(t *testing.T, text string) ([]byte, string) {
	logKey, witKey := testVectorKey("tlog-proof log"), testVectorKey("tlog-proof witness")
	logV, logID := vkey(vectorOrigin, 0x01, logKey.Public().(ed25519.PublicKey))
	witV, witID := vkey(vectorWitness, 0x04, witKey.Public().(ed25519.PublicKey))
	logSig := binary.BigEndian.AppendUint32(nil, logID)
	logSig = append(logSig, ed25519.Sign(logKey, []byte(text))...)
	cosig := binary.BigEndian.AppendUint32(nil, witID)
	cosig = binary.BigEndian.AppendUint64(cosig, vectorTime)
	cosig = append(cosig, ed25519.Sign(witKey, []byte(fmt.Sprintf("cosignature/v1\ntime %d\n%s", vectorTime, text)))...)
	signed := text + "\n— " + vectorOrigin + " " + base64.StdEncoding.EncodeToString(logSig) + "\n— " + vectorWitness + " " + base64.StdEncoding.EncodeToString(cosig) + "\n"
	pol := "log " + logV + "\nwitness w1 " + witV + "\nquorum w1\n"
	return []byte(signed), pol
}

type entryVector struct {
	Entry string `json:"entry"` // the entry, a copy of testdata/entries/<entry>
	Proof string `json:"proof"` // file here
	Index uint64 `json:"index"`
}

func vectorFiles(t *testing.T, rel string, content []byte) []byte {
	t.Helper()
	path := filepath.Join(ztlogVectors, rel)
	if *update {
		os.MkdirAll(ztlogVectors, 0o755)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./verifier/proof -update)", err)
	}
	return b
}

// The vectors prove copies of the golden entries of testdata/entries (taken
// when the vectors were made, in the order of their vectors.json) into a
// tree of those six entries whose checkpoint is signed by a test log and
// cosigned by a test witness (quorum: w1).
func TestZtlogVectors(t *testing.T) {
	var golden []struct {
		File string `json:"file"`
	}
	if *update {
		raw, err := os.ReadFile("../../testdata/entries/vectors.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
	} else {
		raw, err := os.ReadFile(filepath.Join(ztlogVectors, "vectors.json"))
		if err != nil {
			t.Fatal(err)
		}
		var recorded []entryVector
		if err := json.Unmarshal(raw, &recorded); err != nil {
			t.Fatal(err)
		}
		for _, r := range recorded {
			golden = append(golden, struct {
				File string `json:"file"`
			}{r.Entry})
		}
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	var entries [][]byte
	for _, g := range golden {
		var e []byte
		if *update {
			var err error
			if e, err = os.ReadFile(filepath.Join("../../testdata/entries", g.File)); err != nil {
				t.Fatal(err)
			}
		}
		e = vectorFiles(t, g.File, e)
		entries = append(entries, e)
		tree.AppendData(e)
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", vectorOrigin, tree.Size(), base64.StdEncoding.EncodeToString(tree.Hash()))
	signed, polText := vectorCheckpoint(t, text)
	pol, err := trustpolicy.Parse(vectorFiles(t, "trust.policy", []byte(polText)))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []entryVector
	for i, g := range golden {
		path, err := tree.InclusionProof(uint64(i), tree.Size())
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("entry-%d.tlog-proof", i)
		b := vectorFiles(t, name, tlogproof.Format(&tlogproof.Proof{Index: uint64(i), Hashes: path, Checkpoint: signed}))
		manifest = append(manifest, entryVector{Entry: g.File, Proof: name, Index: uint64(i)})
		p, err := tlogproof.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cp, err := proof.VerifyTLogProof(p, entries[i], pol, trustpolicy.VerifyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(cp.Cosignatures) != 1 || cp.Cosignatures[0].Time.Unix() != vectorTime {
			t.Fatalf("%s: cosignatures %+v", name, cp.Cosignatures)
		}
		// Another entry is not at this index.
		if _, err := proof.VerifyTLogProof(p, entries[(i+1)%len(entries)], pol, trustpolicy.VerifyOptions{}); !errors.Is(err, proof.ErrInclusion) {
			t.Fatalf("%s: another entry verified: %v", name, err)
		}
		// Flipping any bit of any byte of the proof makes it fail.
		for j := range b {
			for _, bit := range []byte{0x01, 0x20} {
				c := append([]byte(nil), b...)
				c[j] ^= bit
				q, err := tlogproof.Parse(c)
				if err != nil {
					continue
				}
				if _, err := proof.VerifyTLogProof(q, entries[i], pol, trustpolicy.VerifyOptions{}); err == nil {
					t.Fatalf("%s: byte %d ^ %#x still verifies:\n%s", name, j, bit, c)
				}
			}
		}
	}
	mj, _ := json.MarshalIndent(manifest, "", "  ")
	var recorded []entryVector
	if err := json.Unmarshal(vectorFiles(t, "vectors.json", append(mj, '\n')), &recorded); err != nil {
		t.Fatal(err)
	}
	if len(recorded) != len(manifest) {
		t.Fatalf("vectors.json lists %d proofs, want %d", len(recorded), len(manifest))
	}
}

// FuzzVerify: arbitrary proof texts against the vector policy never panic
// and never verify another entry.
func FuzzVerify(f *testing.F) {
	pol, err := os.ReadFile(filepath.Join(ztlogVectors, "trust.policy"))
	if err != nil {
		f.Fatal(err)
	}
	p, err := trustpolicy.Parse(pol)
	if err != nil {
		f.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(ztlogVectors, "*.tlog-proof"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := tlogproof.Parse(b)
		if err != nil {
			return
		}
		if _, err := proof.VerifyTLogProof(q, []byte("not an entry in the vector log"), p, trustpolicy.VerifyOptions{}); err == nil {
			t.Fatal("a proof verified an entry that is not in the log")
		}
	})
}
