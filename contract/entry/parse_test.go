package entry

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// BenchmarkParse reads entries through Parse (the fast path) and through
// parseStrict (the specification path: canonicalize, encoding/json,
// reference re-encoding), for a plain allow and for an attested decision
// (DSSE envelope and SVID chain embedded, the audit's common case).
func BenchmarkParse(b *testing.B) {
	for _, file := range []string{"decision-allow.json", "decision-attested.json"} {
		leaf, err := os.ReadFile(filepath.Join(vectorDir, file))
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range []struct {
			name  string
			parse func([]byte) (Entry, error)
		}{{"fast", Parse}, {"strict", parseStrict}} {
			b.Run(strings.TrimSuffix(file, ".json")+"/"+p.name, func(b *testing.B) {
				b.SetBytes(int64(len(leaf)))
				for b.Loop() {
					if _, err := p.parse(leaf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMarshal encodes the attested decision with the direct encoder
// (Marshal's path) and with the reference path (encoding/json, then
// canonicalization); validation, which both share in Marshal, is left out.
func BenchmarkMarshal(b *testing.B) {
	leaf, err := os.ReadFile(filepath.Join(vectorDir, "decision-attested.json"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := Parse(leaf)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name    string
		marshal func(Entry) ([]byte, error)
	}{{"direct", func(e Entry) ([]byte, error) { return appendCanonical(nil, e) }}, {"reference", marshalReference}} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(leaf)))
			for b.Loop() {
				if _, err := m.marshal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
