package legacy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustHash(t testing.TB, s string) [32]byte {
	t.Helper()
	var h [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hash %q in a vector", s)
	}
	copy(h[:], b)
	return h
}

// TestBatchRootVectors: BatchRoot reproduces every root computed by an
// independent implementation of the control plane's Merkle root.
func TestBatchRootVectors(t *testing.T) {
	var v struct {
		Vectors []struct {
			Leaves []string `json:"leaves"`
			Root   string   `json:"root"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(readVector(t, "batch-roots.json"), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, vec := range v.Vectors {
		var leaves [][32]byte
		for _, l := range vec.Leaves {
			leaves = append(leaves, mustHash(t, l))
		}
		got, err := BatchRoot(leaves)
		if err != nil {
			t.Fatalf("%d leaves: %v", len(leaves), err)
		}
		if want := mustHash(t, vec.Root); got != want {
			t.Errorf("%d leaves: root %x, want %x", len(leaves), got, want)
		}
	}
	if _, err := BatchRoot(nil); err == nil {
		t.Error("the root of an empty batch was computed")
	}
}

// TestControlPlaneBatchVector: the logBatch vector's metadata parses, names
// the chain's records in file order, and its root is their BatchRoot.
func TestControlPlaneBatchVector(t *testing.T) {
	var v struct {
		AgentID    string `json:"agent_id"`
		MerkleRoot string `json:"merkle_root"`
		Metadata   string `json:"metadata"`
	}
	if err := json.Unmarshal(readVector(t, "control-plane-batch.json"), &v); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadRecords(readVector(t, "control-plane-chain.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseBatchMetadata(v.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ActionHashes) != len(recs) {
		t.Fatalf("metadata names %d hashes, the chain has %d records", len(m.ActionHashes), len(recs))
	}
	for i, r := range recs {
		if got := hex.EncodeToString(m.ActionHashes[i][:]); got != r.Audit.CurrentHash {
			t.Errorf("actionHashes[%d] = %s, want record %d's current_hash %s", i, got, i+1, r.Audit.CurrentHash)
		}
	}
	if len(m.QueuedAt) != 3 || m.QueuedAt[2] != "2026-04-30T10:00:02.611Z" {
		t.Errorf("queuedAt %q", m.QueuedAt)
	}
	root, err := BatchRoot(m.ActionHashes)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHash(t, v.MerkleRoot); root != want {
		t.Errorf("root %x, want the anchored %x", root, want)
	}
	if !strings.HasPrefix(v.AgentID, BatchAgentPrefix) {
		t.Errorf("agent id %q does not start with %q", v.AgentID, BatchAgentPrefix)
	}
}

func TestParseBatchMetadataRefuses(t *testing.T) {
	h := `"0x` + strings.Repeat("ab", 32) + `"`
	for _, c := range []struct{ in, want string }{
		{`{"count":1,"actionHashes":[` + h + `]}`, "queuedAt is missing"},
		{`{"actionHashes":[` + h + `],"queuedAt":["t"]}`, "count is missing"},
		{`{"count":1,"queuedAt":["t"]}`, "actionHashes is missing"},
		{`{"count":2,"actionHashes":[` + h + `],"queuedAt":["t"]}`, "count is 2 but there are 1"},
		{`{"count":1,"actionHashes":[` + h + `],"queuedAt":[]}`, "0 queue times for 1"},
		{`{"count":0,"actionHashes":[],"queuedAt":[]}`, "0 action hashes"},
		{`{"count":1,"actionHashes":["` + strings.Repeat("ab", 32) + `"],"queuedAt":["t"]}`, "actionHashes[0]"},
		{`{"count":1,"actionHashes":["0x` + strings.Repeat("AB", 32) + `"],"queuedAt":["t"]}`, "lowercase hex"},
		{`{"count":1,"actionHashes":[` + h + `],"queuedAt":["t"],"x":1}`, "unknown field"},
		{`{"v":1,"size":3,"checkpoint":"sha256:00"}`, "unknown field"},
		{`ipfs://metadata`, "invalid character"},
	} {
		_, err := ParseBatchMetadata(c.in)
		if err == nil {
			t.Errorf("%s: accepted", c.in)
			continue
		}
		if !errors.Is(err, ErrBatchMetadata) {
			t.Errorf("%s: error %v does not wrap ErrBatchMetadata", c.in, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.in, err, c.want)
		}
	}
}

func FuzzParseBatchMetadata(f *testing.F) {
	var v struct {
		Metadata string `json:"metadata"`
	}
	json.Unmarshal(readVector(f, "control-plane-batch.json"), &v)
	f.Add(v.Metadata)
	f.Add(`{"count":1,"actionHashes":["0x` + strings.Repeat("00", 32) + `"],"queuedAt":[""]}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseBatchMetadata(in)
		if err != nil {
			return
		}
		if n := len(m.ActionHashes); n == 0 || n > MaxBatchLeaves || n != len(m.QueuedAt) {
			t.Fatalf("accepted %d hashes and %d times", n, len(m.QueuedAt))
		}
		if _, err := BatchRoot(m.ActionHashes); err != nil {
			t.Fatal(err)
		}
	})
}
