package history

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/history")

const vectorDir = "../../testdata/history"

// vectorFile is testdata/history/vectors.json.
type vectorFile struct {
	Comment       string      `json:"comment"`
	TestSignerKey string      `json:"test_signer_key"`
	VerifierKey   string      `json:"verifier_key"`
	Policy        string      `json:"policy"`
	Entries       [][]byte    `json:"entries"`
	LogRoot       []byte      `json:"log_root"`
	Keys          []vectorKey `json:"keys"`
	MapSize       uint64      `json:"map_size"`
	MapRoot       []byte      `json:"map_root"`
	Answers       []string    `json:"answers"`
}

type vectorKey struct {
	Key       string   `json:"key"`
	KeyHash   []byte   `json:"key_hash"`
	Indices   []uint64 `json:"indices"`
	ValueHash []byte   `json:"value_hash"`
	MapLeaf   []byte   `json:"map_leaf"`
}

// vectorAnswers are the answers written as answer-<name>.json.
var vectorAnswers = []struct{ name, key string }{
	{"agent-a", AgentKey(agentA)},
	{"agent-b", AgentKey(agentB)},
	{"corr-1", CorrelationKey("corr-1")},
	{"absent", AgentKey("spiffe://example.test/agent/nobody")},
}

// generate computes every vector file from the test log.
func generate(t *testing.T) map[string][]byte {
	l := vectorLog(t)
	s := l.x.Snapshot()
	lr := l.x.LogRoot(s.Size)
	mr := s.Root()
	v := vectorFile{
		Comment:       "ztlog history index vectors (verifier/history/history.md). test_signer_key is a TEST KEY from a fixed seed, never used by a real log.",
		TestSignerKey: l.skey, VerifierKey: l.vkey, Policy: l.polText, Entries: l.leaves,
		LogRoot: lr[:], MapSize: s.MapSize(), MapRoot: mr[:],
	}
	for _, k := range []string{AgentKey(agentA), AgentKey(agentB), CorrelationKey("corr-1"), CorrelationKey("corr-2"), CorrelationKey("corr-3"), CorrelationKey("corr-admin")} {
		kh := KeyHash(k)
		p, ok := s.Find(kh)
		if !ok {
			t.Fatalf("key %s is not in the map", k)
		}
		ml := s.Leaves[p]
		v.Keys = append(v.Keys, vectorKey{Key: k, KeyHash: kh[:], Indices: l.x.Indices(k, s), ValueHash: ml.ValueHash[:], MapLeaf: ml.Bytes()})
	}
	out := map[string][]byte{}
	ic, err := l.x.IndexCheckpoint(l.origin, s).Sign(l.signer)
	if err != nil {
		t.Fatal(err)
	}
	out["index-checkpoint.txt"] = ic
	out["checkpoint.txt"] = l.checkpoint(t, s.Size)
	for _, a := range vectorAnswers {
		name := "answer-" + a.name + ".json"
		v.Answers = append(v.Answers, name)
		out[name] = marshalIndent(t, l.answer(t, a.key))
	}
	out["vectors.json"] = marshalIndent(t, v)
	return out
}

func marshalIndent(t *testing.T, v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestVectors recomputes every vector in testdata/history and requires the
// files to be byte for byte the same.
func TestVectors(t *testing.T) {
	for name, want := range generate(t) {
		path := filepath.Join(vectorDir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestVectors -update)", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the recomputed vector", name)
		}
	}
}

// TestVectorAnswersVerify verifies each answer file as a client would:
// from the files only (policy and key from vectors.json).
func TestVectorAnswersVerify(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorDir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, v.Policy)
	counts := map[string]int{"agent-a": 4, "agent-b": 2, "corr-1": 3, "absent": 0}
	for _, a := range vectorAnswers {
		body, err := os.ReadFile(filepath.Join(vectorDir, "answer-"+a.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := Verify(body, a.key, pol, noTime)
		if err != nil {
			t.Errorf("%s: %v", a.name, err)
			continue
		}
		if len(h.Entries) != counts[a.name] {
			t.Errorf("%s: %d entries, want %d", a.name, len(h.Entries), counts[a.name])
		}
	}
	if got := base64.StdEncoding.EncodeToString(v.MapRoot); got == "" {
		t.Error("vectors.json has no map root")
	}
}
