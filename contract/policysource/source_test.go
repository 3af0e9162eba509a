package policysource

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vector is one line of testdata/vectors.json.
type vector struct {
	File         string `json:"file"`
	Engine       string `json:"engine"`
	Manifest     string `json:"manifest"`
	SourceDigest string `json:"source_digest"`
}

// vectorSources are the sources the golden vectors hold: the repository's
// example policies, and one with binary content and a non-ASCII path.
func vectorSources(t *testing.T) map[string]*Source {
	read := func(dir string, names ...string) map[string][]byte {
		m := map[string][]byte{}
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			m[n] = b
		}
		return m
	}
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	return map[string]*Source{
		"opa-example.json":   {Engine: "opa", Files: read("../../testdata/policies/opa", "authz.rego", "data.json")},
		"cedar-example.json": {Engine: "cedar", Files: read("../../testdata/policies/cedar", "authz.cedar")},
		"nested-binary.json": {Engine: "opa", Files: map[string][]byte{"z/policy.wasm": bin, "ä/data.json": []byte("{\"k\":\"<&>\"}\n"), "a.rego": []byte("package x\n")}},
	}
}

// TestVectors: each golden document parses, round-trips byte for byte, and
// has the manifest and digest listed. ZTLOG_UPDATE_VECTORS=1 rewrites them.
func TestVectors(t *testing.T) {
	if os.Getenv("ZTLOG_UPDATE_VECTORS") == "1" {
		writeVectors(t)
	}
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(vectorSources(t)) {
		t.Fatalf("%d vectors, want %d", len(vs), len(vectorSources(t)))
	}
	for _, v := range vs {
		doc, err := os.ReadFile(filepath.Join("testdata", v.File))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(doc)
		if err != nil {
			t.Fatalf("%s: %v", v.File, err)
		}
		if s.Engine != v.Engine {
			t.Errorf("%s: engine %q, want %q", v.File, s.Engine, v.Engine)
		}
		if got := string(s.Manifest()); got != v.Manifest {
			t.Errorf("%s: manifest %s, want %s", v.File, got, v.Manifest)
		}
		if got := s.Digest(); got != v.SourceDigest {
			t.Errorf("%s: digest %s, want %s", v.File, got, v.SourceDigest)
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, doc) {
			t.Errorf("%s: does not round-trip:\n%s\nwant\n%s", v.File, again, doc)
		}
		want := vectorSources(t)[v.File]
		for p, b := range want.Files {
			if !bytes.Equal(s.Files[p], b) {
				t.Errorf("%s: file %q differs from its source", v.File, p)
			}
		}
	}
}

func writeVectors(t *testing.T) {
	var vs []vector
	for _, name := range []string{"opa-example.json", "cedar-example.json", "nested-binary.json"} {
		s := vectorSources(t)[name]
		doc, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", name), doc, 0o644); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, vector{File: name, Engine: s.Engine, Manifest: string(s.Manifest()), SourceDigest: s.Digest()})
	}
	out, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.WriteFile("testdata/vectors.json", append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInvalid: each invalid document is refused with the error its
// "error" file names.
func TestInvalid(t *testing.T) {
	raw, err := os.ReadFile("testdata/invalid/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		File  string `json:"file"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 8 {
		t.Fatalf("%d invalid vectors, want at least 8", len(cases))
	}
	for _, c := range cases {
		doc, err := os.ReadFile(filepath.Join("testdata/invalid", c.File))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(doc)
		if err == nil {
			t.Errorf("%s: parsed, want an error containing %q", c.File, c.Error)
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v does not wrap ErrMalformed", c.File, err)
		}
		if !strings.Contains(err.Error(), c.Error) {
			t.Errorf("%s: error %q, want it to contain %q", c.File, err, c.Error)
		}
	}
}

// TestDigestCoversEveryByteAndPath: changing one byte, renaming a file or
// adding one changes the digest.
func TestDigestCoversEveryByteAndPath(t *testing.T) {
	base := &Source{Engine: "opa", Files: map[string][]byte{"a.rego": []byte("package a\n"), "d/data.json": []byte("{}")}}
	d0 := base.Digest()
	byteChanged := &Source{Engine: "opa", Files: map[string][]byte{"a.rego": []byte("package b\n"), "d/data.json": []byte("{}")}}
	renamed := &Source{Engine: "opa", Files: map[string][]byte{"b.rego": []byte("package a\n"), "d/data.json": []byte("{}")}}
	added := &Source{Engine: "opa", Files: map[string][]byte{"a.rego": []byte("package a\n"), "d/data.json": []byte("{}"), "e/data.json": []byte("{}")}}
	for name, s := range map[string]*Source{"byte changed": byteChanged, "renamed": renamed, "added": added} {
		if s.Digest() == d0 {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	engine := &Source{Engine: "cedar", Files: base.Files}
	if engine.Digest() != d0 {
		t.Errorf("the digest covers the engine; the entry names it, the digest must not")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"opa-example.json", "cedar-example.json", "nested-binary.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"engine":"opa","files":{"../x":"AA=="},"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("parsed a non-canonical document")
		}
	})
}
