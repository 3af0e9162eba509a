package daal

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// ledgerHistory lists "state/attestation" of every line of anchor id.
func ledgerHistory(t *testing.T, dir string, id uint64) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, ledgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a vdaal.Anchor
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		if a.ID == id {
			out = append(out, string(a.State)+"/"+string(a.Attestation))
		}
	}
	return out
}
