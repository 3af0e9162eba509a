package contract

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// addVectors seeds f with every entry vector, valid and invalid.
func addVectors(f *testing.F) {
	for _, dir := range []string{vectorDir, filepath.Join(vectorDir, "invalid")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzParseFastPath: whatever Parse's fast path accepts, the full
// (specification) path accepts too, as the same entry.
func FuzzParseFastPath(f *testing.F) {
	addVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e := parseExact(b)
		if e == nil {
			return
		}
		s, err := parseStrict(b)
		if err != nil {
			t.Fatalf("fast path accepted what the full path refuses (%v):\n%s", err, b)
		}
		m1, _ := Marshal(e)
		m2, _ := Marshal(s)
		if !bytes.Equal(m1, m2) || !bytes.Equal(m1, b) {
			t.Fatalf("paths disagree:\n%s\n%s", m1, m2)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	leaf, err := os.ReadFile(filepath.Join(vectorDir, "decision-allow.json"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse(leaf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStrict(b *testing.B) {
	leaf, err := os.ReadFile(filepath.Join(vectorDir, "decision-allow.json"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := parseStrict(leaf); err != nil {
			b.Fatal(err)
		}
	}
}
