package splitview

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/splitview")

const vectorDir = "../../testdata/splitview"

// TEST VECTOR KEY — public in this repository, never use it for a real log.
// It signs the checkpoints of the golden vectors.
const (
	testLogSKey = "PRIVATE+KEY+example.com/forked-log+8f2579e6+Aehtd01vodSiJu3r7iE5sLZ5Hgf1dwLORzKKrB4nlp5E"
	testOrigin  = "example.com/forked-log"
)

var vectorTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testKeys(t testing.TB) (note.Signer, string) {
	t.Helper()
	s, err := note.NewSigner(testLogSKey)
	if err != nil {
		t.Fatal(err)
	}
	// The vkey of the test key, derived the way note does.
	v := vkeyOf(t, testLogSKey)
	return s, v
}

func vkeyOf(t testing.TB, skey string) string {
	t.Helper()
	// PRIVATE+KEY+<name>+<id>+<base64(0x01||seed)> -> <name>+<id>+<base64(0x01||pub)>
	parts := strings.SplitN(skey, "+", 5)
	raw, _ := base64.StdEncoding.DecodeString(parts[4])
	pub := ed25519Public(raw[1:])
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func tree(entries ...string) *testonly.Tree {
	tr := testonly.New(rfc6962.DefaultHasher)
	for _, e := range entries {
		tr.AppendData([]byte(e))
	}
	return tr
}

func signed(t testing.TB, s note.Signer, size uint64, root []byte) []byte {
	t.Helper()
	text := fmt.Sprintf("%s\n%d\n%s\n", testOrigin, size, base64.StdEncoding.EncodeToString(root))
	n, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func b64s(hs [][]byte) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, base64.StdEncoding.EncodeToString(h))
	}
	return out
}

// vectors builds the golden evidence files: an honest tree a0..a9 and a
// fork sharing a0..a2 and then diverging.
func vectors(t testing.TB) map[string][]byte {
	s, vkey := testKeys(t)
	honest := tree("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9")
	fork := tree("a0", "a1", "a2", "b3", "b4", "b5", "b6", "b7", "b8", "b9")
	obs := [2]Observation{
		{Source: "add-checkpoint from 192.0.2.1", Time: "2025-06-01T11:59:00Z"},
		{Source: "https://partner.example/log/checkpoint", Time: "2025-06-01T11:59:30Z"},
	}
	out := map[string][]byte{}
	build := func(name string, cps [2][]byte, p *ProofAttempt) {
		_, raw, err := Build([]string{vkey}, cps, obs, p, "witness.example/w1", vectorTime)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = raw
	}
	build("same-size.json", [2][]byte{signed(t, s, 5, honest.HashAt(5)), signed(t, s, 5, fork.HashAt(5))}, nil)

	p58, _ := fork.ConsistencyProof(5, 8)
	build("inconsistent.json", [2][]byte{signed(t, s, 5, honest.HashAt(5)), signed(t, s, 8, fork.HashAt(8))},
		&ProofAttempt{Hashes: b64s(p58), Source: "https://partner.example/log/tile", Error: "consistency proof from 5 to 8 does not verify"})

	// Size 4 is a power of two: the proof does not carry the old root, so
	// the reporter read it from the fork's tiles.
	p48, _ := fork.ConsistencyProof(4, 8)
	build("inconsistent-power-of-two.json", [2][]byte{signed(t, s, 8, fork.HashAt(8)), signed(t, s, 4, honest.HashAt(4))},
		&ProofAttempt{Hashes: b64s(p48), ImpliedRoot: base64.StdEncoding.EncodeToString(fork.HashAt(4)), Source: "https://partner.example/log/tile", Error: "consistency proof from 4 to 8 does not verify"})

	build("unproven.json", [2][]byte{signed(t, s, 5, honest.HashAt(5)), signed(t, s, 8, fork.HashAt(8))},
		&ProofAttempt{Source: "https://partner.example/log/tile", Error: "tile 0/000 of size 8: 404 Not Found"})
	return out
}

func TestGoldenVectors(t *testing.T) {
	got := vectors(t)
	if *update {
		os.MkdirAll(vectorDir, 0o755)
		for name, raw := range got {
			if err := os.WriteFile(filepath.Join(vectorDir, name), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, vkey := testKeys(t)
	trusted, _ := VerifierKeys([]string{vkey})
	want := map[string]struct {
		kind       string
		conclusive bool
		sizes      [2]uint64
	}{
		"same-size.json":                 {SameSize, true, [2]uint64{5, 5}},
		"inconsistent.json":              {Inconsistent, true, [2]uint64{5, 8}},
		"inconsistent-power-of-two.json": {Inconsistent, true, [2]uint64{4, 8}},
		"unproven.json":                  {Unproven, false, [2]uint64{5, 8}},
	}
	for name, w := range want {
		raw, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatalf("%v (run go test ./verifier/splitview -update)", err)
		}
		if !bytes.Equal(raw, got[name]) {
			t.Errorf("%s differs from what Build makes now; if the format changed on purpose, run with -update", name)
		}
		if !IsEvidence(raw) {
			t.Errorf("%s: IsEvidence = false", name)
		}
		for _, keys := range []note.Verifiers{trusted, nil} {
			v, err := Verify(raw, keys)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if v.Kind != w.kind || v.Conclusive != w.conclusive || v.Sizes != w.sizes || v.Origin != testOrigin || v.KeysFromFile != (keys == nil) {
				t.Errorf("%s: verdict %+v", name, v)
			}
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	s, vkey := testKeys(t)
	trusted, _ := VerifierKeys([]string{vkey})
	good := vectors(t)
	other, _, _ := note.GenerateKey(nil, testOrigin)
	otherSigner, _ := note.NewSigner(other)
	honest := tree("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8")
	p58, _ := honest.ConsistencyProof(5, 8)

	mutate := func(name string, f func(e *Evidence)) []byte {
		e, err := Parse(good[name])
		if err != nil {
			t.Fatal(err)
		}
		f(e)
		raw, _ := e.Marshal()
		return raw
	}
	cases := map[string][]byte{
		"not JSON":          []byte("split view!"),
		"wrong format":      mutate("same-size.json", func(e *Evidence) { e.Format = "ztlog/split-view/v2" }),
		"unknown kind":      mutate("same-size.json", func(e *Evidence) { e.Kind = "fork" }),
		"unknown member":    bytes.Replace(good["same-size.json"], []byte(`"format"`), []byte(`"extra": 1, "format"`), 1),
		"trailing data":     append(append([]byte{}, good["same-size.json"]...), []byte("{}")...),
		"bad time":          mutate("same-size.json", func(e *Evidence) { e.Time = "yesterday" }),
		"same checkpoint":   mutate("same-size.json", func(e *Evidence) { e.Checkpoints[1] = e.Checkpoints[0] }),
		"flipped signature": mutate("same-size.json", func(e *Evidence) { e.Checkpoints[1] = flipSig(e.Checkpoints[1]) }),
		"edited root":       mutate("same-size.json", func(e *Evidence) { e.Checkpoints[1] = strings.Replace(e.Checkpoints[1], "\n5\n", "\n6\n", 1) }),
		"other key":         mutate("same-size.json", func(e *Evidence) { e.Checkpoints[1] = string(signed(t, otherSigner, 5, honest.HashAt(5))) }),
		"out of order":      mutate("inconsistent.json", func(e *Evidence) { e.Checkpoints[0], e.Checkpoints[1] = e.Checkpoints[1], e.Checkpoints[0] }),
		"proof on same-size": mutate("same-size.json", func(e *Evidence) {
			e.Proof = &ProofAttempt{OldSize: 5, NewSize: 5, Hashes: []string{}}
		}),
		"wrong implied root": mutate("inconsistent.json", func(e *Evidence) {
			e.Proof.ImpliedRoot = base64.StdEncoding.EncodeToString(honest.HashAt(4))
		}),
		"tampered proof":  mutate("inconsistent.json", func(e *Evidence) { e.Proof.Hashes[0] = e.Proof.Hashes[1] }),
		"proof sizes":     mutate("inconsistent.json", func(e *Evidence) { e.Proof.OldSize = 4 }),
		"no implied root": mutate("inconsistent.json", func(e *Evidence) { e.Proof.ImpliedRoot = "" }),
		"consistent after all": mutate("unproven.json", func(e *Evidence) {
			e.Checkpoints = [2]string{string(signed(t, s, 5, honest.HashAt(5))), string(signed(t, s, 8, honest.HashAt(8)))}
			e.Proof.Hashes = b64s(p58)
		}),
		"size zero": mutate("unproven.json", func(e *Evidence) {
			e.Checkpoints[0] = string(signed(t, s, 0, rfc6962.DefaultHasher.EmptyRoot()))
			e.Proof.OldSize = 0
		}),
		"too large": append(bytes.Repeat([]byte(" "), MaxSize), good["same-size.json"]...),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if v, err := Verify(raw, trusted); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalid", v, err)
			}
		})
	}
	// A key the caller does not trust: the file's own keys are not used.
	otherV, _ := VerifierKeys([]string{vkeyOf(t, other)})
	if _, err := Verify(good["same-size.json"], otherV); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verified with an untrusted key set: %v", err)
	}
}

func TestBuildRefusesConsistentCheckpoints(t *testing.T) {
	s, vkey := testKeys(t)
	honest := tree("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7")
	p, _ := honest.ConsistencyProof(3, 8)
	_, _, err := Build([]string{vkey}, [2][]byte{signed(t, s, 3, honest.HashAt(3)), signed(t, s, 8, honest.HashAt(8))},
		[2]Observation{}, &ProofAttempt{Hashes: b64s(p)}, "w", vectorTime)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Build of consistent checkpoints: %v", err)
	}
}

func TestImpliedRoot(t *testing.T) {
	honest := tree("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7")
	fork := tree("a0", "a1", "a2", "b3", "b4", "b5", "b6", "b7")
	p, _ := fork.ConsistencyProof(5, 8)
	if got := ImpliedRoot(5, 8, p, honest.HashAt(5), fork.HashAt(8)); !bytes.Equal(got, fork.HashAt(5)) {
		t.Fatalf("ImpliedRoot = %x, want the fork's root at 5", got)
	}
	// Power of two: not derivable from the proof alone.
	p, _ = fork.ConsistencyProof(4, 8)
	if got := ImpliedRoot(4, 8, p, honest.HashAt(4), fork.HashAt(8)); got != nil {
		t.Fatalf("ImpliedRoot at a power of two = %x, want nil", got)
	}
	// A proof that does not match the new root proves nothing.
	p, _ = fork.ConsistencyProof(5, 8)
	if got := ImpliedRoot(5, 8, p, honest.HashAt(5), honest.HashAt(8)); got != nil {
		t.Fatalf("ImpliedRoot with the wrong new root = %x", got)
	}
}

func flipSig(cp string) string {
	i := strings.LastIndex(cp, " ") + 5
	b := []byte(cp)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func FuzzVerify(f *testing.F) {
	for _, name := range []string{"same-size.json", "inconsistent.json", "inconsistent-power-of-two.json", "unproven.json"} {
		if raw, err := os.ReadFile(filepath.Join(vectorDir, name)); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := Verify(raw, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if v.Conclusive != (v.Kind != Unproven) || v.Sizes[0] > v.Sizes[1] {
			t.Fatalf("inconsistent verdict %+v", v)
		}
		if v.Kind == SameSize && bytes.Equal(v.Roots[0], v.Roots[1]) {
			t.Fatal("same-size verdict with equal roots")
		}
	})
}
