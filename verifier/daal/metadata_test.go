package daal

import (
	"crypto/sha256"
	"os"
	"strings"
	"testing"
)

func TestMetadataGolden(t *testing.T) {
	body := CheckpointBody("example.com/ztlog", 42, make([]byte, 32))
	m := Metadata{Size: 42, Checkpoint: sha256.Sum256(body)}
	golden, err := os.ReadFile("testdata/metadata.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Marshal(); got != strings.TrimSuffix(string(golden), "\n") {
		t.Fatalf("metadata encoding changed:\n got %s\nwant %s", got, golden)
	}
	back, err := ParseMetadata(m.Marshal())
	if err != nil || back != m {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestParseMetadataRejects(t *testing.T) {
	good := Metadata{Size: 7, Checkpoint: [32]byte{1}}.Marshal()
	for name, s := range map[string]string{
		"empty":         "",
		"spaces":        strings.Replace(good, `"size":`, `"size": `, 1),
		"version 2":     strings.Replace(good, `"v":1`, `"v":2`, 1),
		"extra key":     strings.Replace(good, `}`, `,"x":1}`, 1),
		"negative size": strings.Replace(good, `"size":7`, `"size":-7`, 1),
		"float size":    strings.Replace(good, `"size":7`, `"size":7.0`, 1),
		"uppercase hex": strings.Replace(good, `sha256:01`, `sha256:0A`, 1),
		"no prefix":     strings.Replace(good, `sha256:`, ``, 1),
		"order":         `{"size":7,"v":1,"checkpoint":"sha256:` + strings.Repeat("00", 32) + `"}`,
		"trailing":      good + " ",
		"legacy":        `{"decision":"deny","actor":"a"}`,
	} {
		if _, err := ParseMetadata(s); err == nil {
			t.Errorf("%s: %q accepted", name, s)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add(Metadata{Size: 1, Checkpoint: [32]byte{9}}.Marshal())
	f.Add(`{"v":1,"size":18446744073709551615,"checkpoint":"sha256:` + strings.Repeat("ab", 32) + `"}`)
	f.Add(`{"v":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMetadata(s)
		if err != nil {
			return
		}
		if m.Marshal() != s {
			t.Fatalf("accepted a non-canonical form %q", s)
		}
	})
}
