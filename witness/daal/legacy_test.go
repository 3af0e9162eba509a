package daal

import (
	"os"
	"testing"
)

// legacyFixture is the field's legacy record (shared/testdata/legacy), copied
// into testdata so the tests do not depend on a directory outside the repo.
func TestLegacyFixtureReproduces(t *testing.T) {
	raw, err := os.ReadFile("testdata/legacy/denied-audit.json")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseLegacyRecords(raw)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %d", err, len(recs))
	}
	if !recs[0].Reproduces() {
		t.Fatal("the field's record does not reproduce its current_hash")
	}
	starter, _ := recs[0].Hashes()
	if starter != recs[0].StatedHash() {
		t.Fatal("the fixture is in the starter-adapter form, which did not reproduce")
	}
	recs[0].Reason = "changed"
	if recs[0].Reproduces() {
		t.Fatal("a changed record still reproduces")
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
			r.Reproduces()
			if len(r.Audit.CurrentHash) != 64 {
				t.Fatalf("accepted hash %q", r.Audit.CurrentHash)
			}
		}
	})
}
