package pdp

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/zt-infra/ztlog/contract/policysource"
)

var updateSources = flag.Bool("update-sources", false, "rewrite the example policies' stored-source vectors in contract/policysource/testdata from testdata/policies")

// TestSourceDigestIsTheStoredContent: the source digest a loaded version
// carries is the digest of the policysource golden vector of the same
// files, and compiling the stored content gives the same policy hash.
// After a change to the example policies, rewrite their vectors with
// go test ./contract/gate/pdp -run TestSourceDigestIsTheStoredContent -update-sources.
func TestSourceDigestIsTheStoredContent(t *testing.T) {
	if *updateSources {
		rewriteExampleSources(t)
	}
	raw, err := os.ReadFile("../../policysource/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		File         string `json:"file"`
		SourceDigest string `json:"source_digest"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, v := range vs {
		want[v.File] = v.SourceDigest
	}
	ctx := context.Background()
	for _, c := range []struct{ engine, dir, vector string }{
		{"opa", "opa", "opa-example.json"},
		{"cedar", "cedar", "cedar-example.json"},
	} {
		p, err := Load(ctx, c.engine, filepath.Join(examples, c.dir), "")
		if err != nil {
			t.Fatal(err)
		}
		v := p.Version()
		if v.SourceDigest != want[c.vector] {
			t.Errorf("%s: source digest %s, want the vector's %s", c.engine, v.SourceDigest, want[c.vector])
		}
		doc, err := os.ReadFile(filepath.Join("../../policysource/testdata", c.vector))
		if err != nil {
			t.Fatal(err)
		}
		src, err := policysource.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		q, err := Compile(ctx, src, "", "stored")
		if err != nil {
			t.Fatal(err)
		}
		if q.Version().Hash != v.Hash {
			t.Errorf("%s: compiled from the stored source: hash %s, loaded %s", c.engine, q.Version().Hash, v.Hash)
		}
		if q.Version().SourceDigest != v.SourceDigest {
			t.Errorf("%s: compiled from the stored source: source digest %s, loaded %s", c.engine, q.Version().SourceDigest, v.SourceDigest)
		}
	}
}

// TestSourceDigestIndependentOfLocation: the same files loaded from two
// directories have one source digest (paths are relative to the root).
func TestSourceDigestIndependentOfLocation(t *testing.T) {
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "deeper", "still")
	for _, dir := range []string{a, b} {
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		rego, _ := os.ReadFile(filepath.Join(examples, "opa", "authz.rego"))
		os.WriteFile(filepath.Join(dir, "authz.rego"), rego, 0o644)
		os.WriteFile(filepath.Join(dir, "sub", "data.json"), []byte(`{"x":1}`), 0o644)
	}
	sa, err := CollectOPA(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := CollectOPA(b)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Digest() != sb.Digest() {
		t.Errorf("digests differ by location: %s, %s", sa.Digest(), sb.Digest())
	}
	if _, ok := sa.Files["sub/data.json"]; !ok {
		t.Errorf("nested data collected as %v, want sub/data.json", sa.Paths())
	}
}

// rewriteExampleSources writes the stored form of the example policies
// and their manifest and digest into the policysource vectors.
func rewriteExampleSources(t *testing.T) {
	const dir = "../../policysource/testdata"
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		File         string `json:"file"`
		Engine       string `json:"engine"`
		Manifest     string `json:"manifest"`
		SourceDigest string `json:"source_digest"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	for i := range vs {
		v := &vs[i]
		engine, file := v.Engine, v.File
		if file != engine+"-example.json" {
			continue
		}
		src, err := Collect(engine, filepath.Join(examples, engine))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := src.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), doc, 0o644); err != nil {
			t.Fatal(err)
		}
		v.Manifest, v.SourceDigest = string(src.Manifest()), src.Digest()
	}
	out, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vectors.json"), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
