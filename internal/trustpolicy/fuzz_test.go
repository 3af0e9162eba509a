package trustpolicy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse: Parse never panics, and whatever it accepts, Marshal writes in
// a form Parse reads back to the same policy.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join(vectorDir, dir, "*.policy"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("quorum none\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := Parse(text)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			return
		}
		m := p.Marshal()
		q, err := Parse(m)
		if err != nil {
			t.Fatalf("Parse(Marshal(p)): %v\n%s", err, m)
		}
		if !bytes.Equal(q.Marshal(), m) {
			t.Fatalf("Marshal not stable:\n%s\n%s", m, q.Marshal())
		}
	})
}

// FuzzVerifyCheckpoint: arbitrary notes against the spec-example policy
// never panic, and an accepted checkpoint meets the quorum with
// cosignatures from policy witnesses only.
func FuzzVerifyCheckpoint(f *testing.F) {
	pol, err := os.ReadFile(filepath.Join(vectorDir, "valid", "spec-example.policy"))
	if err != nil {
		f.Fatal(err)
	}
	p, err := Parse(pol)
	if err != nil {
		f.Fatal(err)
	}
	notes, _ := filepath.Glob(filepath.Join(vectorDir, "checkpoints", "*.note"))
	for _, file := range notes {
		b, err := os.ReadFile(file)
		if err == nil {
			f.Add(b)
		}
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, signed []byte) {
		cp, err := p.VerifyCheckpoint(signed, VerifyOptions{Now: now})
		if err != nil {
			return
		}
		if cp.Log == nil || cp.Log.Origin != cp.Origin || len(cp.Hash) != 32 {
			t.Fatalf("accepted %+v", cp)
		}
		if !p.Satisfied(cp.Cosigned) {
			t.Fatal("accepted without quorum")
		}
	})
}
