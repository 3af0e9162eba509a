package history

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseIndexText: the index checkpoint parser never panics, and what
// it accepts writes back to the same text.
func FuzzParseIndexText(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(vectorDir, "index-checkpoint.txt")); err == nil {
		f.Add(noteText(string(b)))
	}
	f.Add("ztlog-history-index v1\no\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
	f.Add("o\n1\nAAAA\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseIndexText(text)
		if err != nil {
			return
		}
		if c.Text() != text {
			t.Fatalf("accepted %q, which writes back as %q", text, c.Text())
		}
	})
}

// FuzzVerifyAnswer: the answer parser and verifier never panic on any
// input, and a mutated vector never verifies with more or fewer entries
// than the honest answer.
func FuzzVerifyAnswer(f *testing.F) {
	l := vectorLog(f)
	for _, a := range vectorAnswers {
		if b, err := os.ReadFile(filepath.Join(vectorDir, "answer-"+a.name+".json")); err == nil {
			f.Add(b, a.key)
		}
	}
	f.Add([]byte(`{"v":1}`), AgentKey(agentA))
	honest := map[string]int{}
	for _, a := range vectorAnswers {
		h, err := Verify(encode(f, l.answer(f, a.key)), a.key, l.policy, time.Time{})
		if err != nil {
			f.Fatal(err)
		}
		honest[a.key] = len(h.Entries)
	}
	f.Fuzz(func(t *testing.T, raw []byte, key string) {
		h, err := Verify(raw, key, l.policy, time.Time{})
		if err != nil {
			return
		}
		if n, ok := honest[key]; ok && len(h.Entries) != n {
			t.Fatalf("an answer for %s verified with %d entries; the log has %d", key, len(h.Entries), n)
		}
	})
}

// FuzzMultiRoot: the multi-leaf proof verifier never panics.
func FuzzMultiRoot(f *testing.F) {
	f.Add(uint64(10), uint64(3), uint64(7), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, n, i, j uint64, proof []byte) {
		var p [][]byte
		for len(proof) >= 32 {
			p, proof = append(p, proof[:32]), proof[32:]
		}
		if len(proof) > 0 {
			p = append(p, proof)
		}
		MultiRoot(n%5000, []uint64{i % 5000, j % 5000}, []Hash{{}, {}}, p)
	})
}
