package daal

import (
	"encoding/json"
	"os"
	"testing"
)

// The field's legacy record (shared/testdata/legacy), copied into testdata
// so the tests do not depend on a directory outside the repository.
func TestLegacyFixtureReproduces(t *testing.T) {
	raw, err := os.ReadFile("testdata/legacy/denied-audit.json")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseLegacyRecords(raw)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %d", err, len(recs))
	}
	if !legacyReproduces(recs[0]) {
		t.Fatal("the field's record does not reproduce its current_hash")
	}
	recs[0].Reason = json.RawMessage(`"changed"`)
	if legacyReproduces(recs[0]) {
		t.Fatal("a changed record still reproduces")
	}
	if _, err := ParseLegacyRecords([]byte(`{"actor":"a","audit":{"current_hash":"ABC"}}`)); err == nil {
		t.Fatal("a record with a malformed current_hash was accepted")
	}
}

func FuzzParseLegacyRecords(f *testing.F) {
	raw, _ := os.ReadFile("testdata/legacy/denied-audit.json")
	f.Add(raw)
	f.Add([]byte("[]"))
	f.Add([]byte(`{"audit":{"current_hash":"00"}}` + "\n" + `{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := ParseLegacyRecords(in)
		if err != nil {
			return
		}
		for _, r := range recs {
			legacyReproduces(r)
			if _, ok := legacyStated(r); !ok {
				t.Fatalf("accepted hash %q", r.Audit.CurrentHash)
			}
		}
	})
}
