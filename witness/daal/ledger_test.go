package daal

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
	sc.Buffer(nil, maxLedgerLine)
	for sc.Scan() {
		var a Anchor
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		if a.ID == id {
			out = append(out, string(a.State)+"/"+string(a.Attestation))
		}
	}
	return out
}
