package tlogproof

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// The vector is the example of C2SP tlog-proof@v1 with the checkpoint
// signatures shortened; Parse only reads syntax.
const vectorFile = "../../testdata/tlog-proof/spec-example.tlog-proof"

func TestSpecExample(t *testing.T) {
	raw, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Index != 73894 || len(p.Hashes) != 5 || string(p.Extra) == "" {
		t.Fatalf("parsed %+v", p)
	}
	if !strings.HasPrefix(string(p.Checkpoint), "example.com/fancylog\n109482\n") {
		t.Fatalf("checkpoint %q", p.Checkpoint)
	}
	if got := Format(p); !bytes.Equal(got, raw) {
		t.Fatalf("Format(Parse(x)) != x:\n%s", got)
	}
}

func TestRoundTripWithoutExtraOrHashes(t *testing.T) {
	p := &Proof{Index: 0, Checkpoint: []byte("o\n1\nAAAA\n\n— o sig\n")}
	q, err := Parse(Format(p))
	if err != nil {
		t.Fatal(err)
	}
	if q.Extra != nil || q.Index != 0 || len(q.Hashes) != 0 || !bytes.Equal(q.Checkpoint, p.Checkpoint) {
		t.Fatalf("round trip: %+v", q)
	}
}

func TestParseRejects(t *testing.T) {
	h := "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ="
	cp := "\n\no\n1\nAAAA\n\n— o sig\n"
	for name, s := range map[string]string{
		"no header":       "index 1\n" + h + cp,
		"wrong header":    "c2sp.org/tlog-proof@v2\nindex 1" + cp,
		"no index":        Header + "\n" + h + cp,
		"leading zero":    Header + "\nindex 01" + cp,
		"negative":        Header + "\nindex -1" + cp,
		"short hash":      Header + "\nindex 1\nAAAA" + cp,
		"bad base64":      Header + "\nindex 1\n" + strings.Replace(h, "g", "!", 1) + cp,
		"bad extra":       Header + "\nextra %%%\nindex 1" + cp,
		"no checkpoint":   Header + "\nindex 1\n" + h,
		"empty checkpt":   Header + "\nindex 1\n\n",
		"extra after idx": Header + "\nindex 1\nextra AAAA" + cp,
		"hash with CR":    Header + "\nindex 1\n" + h[:10] + "\r" + h[10:] + cp,
		"extra with CR":   Header + "\nextra AA\rAA\nindex 1" + cp,
	} {
		if _, err := Parse([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
	long := Header + "\nindex 1\n" + strings.Repeat(h+"\n", 65) + cp[1:]
	if _, err := Parse([]byte(long)); !errors.Is(err, ErrMalformed) {
		t.Errorf("65 hashes: Parse = %v, want ErrMalformed", err)
	}
}

func FuzzParse(f *testing.F) {
	if raw, err := os.ReadFile(vectorFile); err == nil {
		f.Add(raw)
	}
	f.Add(Format(&Proof{Index: 3, Hashes: [][]byte{make([]byte, 32)}, Checkpoint: []byte("o\n1\nAA==\n\n— o x\n")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		q, err := Parse(Format(p))
		if err != nil {
			t.Fatalf("re-parse of formatted proof: %v", err)
		}
		if q.Index != p.Index || len(q.Hashes) != len(p.Hashes) || !bytes.Equal(q.Checkpoint, p.Checkpoint) || !bytes.Equal(q.Extra, p.Extra) {
			t.Fatalf("round trip changed the proof: %+v -> %+v", p, q)
		}
	})
}
