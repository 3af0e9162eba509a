package tlogwitness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
)

// The vectors are the example request and response bodies of C2SP
// tlog-witness, verbatim (their signatures are the spec's; these tests read
// syntax only).
const (
	requestVector  = "../../testdata/tlog-witness/spec-example-request.txt"
	responseVector = "../../testdata/tlog-witness/spec-example-response.txt"
)

func TestSpecExampleRequest(t *testing.T) {
	raw, err := os.ReadFile(requestVector)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.OldSize != 20852014 || len(r.Proof) != 4 {
		t.Fatalf("old %d, %d proof lines", r.OldSize, len(r.Proof))
	}
	if got := base64.StdEncoding.EncodeToString(r.Proof[0]); got != "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=" {
		t.Fatalf("first proof hash %s", got)
	}
	if !strings.HasPrefix(string(r.Checkpoint), "example.com/behind-the-sofa\n20852163\n") || !strings.HasSuffix(string(r.Checkpoint), "qbSzm9Q=\n") {
		t.Fatalf("checkpoint %q", r.Checkpoint)
	}
	if got := FormatRequest(r); !bytes.Equal(got, raw) {
		t.Fatalf("FormatRequest(ParseRequest(x)) != x:\n%s", got)
	}
}

func TestSpecExampleResponse(t *testing.T) {
	raw, err := os.ReadFile(responseVector)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := CosignatureLines(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || !bytes.HasPrefix(lines[2], []byte("— witness.example/w2 ")) || !bytes.Equal(bytes.Join(lines, nil), raw) {
		t.Fatalf("lines %q", lines)
	}
}

func TestOldZeroNoProof(t *testing.T) {
	body := "old 0\n\norigin\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— origin AAAA\n"
	r, err := ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.OldSize != 0 || r.Proof != nil || string(r.Checkpoint) != body[len("old 0\n\n"):] {
		t.Fatalf("%+v", r)
	}
}

func TestParseRequestRejects(t *testing.T) {
	h := "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
	cp := "\no\n1\nAAAA\n\n— o sig\n"
	many := strings.Repeat(h+"\n", MaxProofHashes+1)
	for name, s := range map[string]string{
		"empty":              "",
		"no old line":        h + "\n" + cp,
		"Old capitalised":    "Old 1\n" + cp,
		"two spaces":         "old  1\n" + cp,
		"tab":                "old\t1\n" + cp,
		"leading zero":       "old 01\n" + cp,
		"sign":               "old +1\n" + cp,
		"negative":           "old -1\n" + cp,
		"overflow":           "old 18446744073709551616\n" + cp,
		"hex":                "old 0x10\n" + cp,
		"trailing space":     "old 1 \n" + cp,
		"CRLF":               "old 1\r\n" + cp,
		"no newline":         "old 1",
		"short hash":         "old 1\nAAAA\n" + cp,
		"long hash":          "old 1\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n" + cp,
		"url base64":         "old 1\n" + strings.ReplaceAll(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "+", "-") + "\n" + cp,
		"unpadded":           "old 1\n" + strings.TrimRight(h, "=") + "\n" + cp,
		"64 proof lines":     "old 1\n" + many + cp,
		"no empty line":      "old 1\n" + h + "\n",
		"missing checkpoint": "old 1\n" + h + "\n\n",
		"too large":          "old 1\n\n" + strings.Repeat("x", MaxRequestSize),
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := ParseRequest([]byte(s)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRequest(%q) = %+v, %v; want ErrMalformed", truncate([]byte(s)), r, err)
			}
		})
	}
}

func TestMaxProofAccepted(t *testing.T) {
	proof := make([][]byte, MaxProofHashes)
	for i := range proof {
		proof[i] = bytes.Repeat([]byte{byte(i)}, HashSize)
	}
	r := &Request{OldSize: 5, Proof: proof, Checkpoint: []byte("o\n9\nAAAA\n\n— o sig\n")}
	got, err := ParseRequest(FormatRequest(r))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Proof) != MaxProofHashes || !bytes.Equal(got.Proof[62], proof[62]) {
		t.Fatal("63-line proof did not round-trip")
	}
}

func TestSize(t *testing.T) {
	for _, n := range []uint64{0, 1, 20852163, 1<<64 - 1} {
		got, err := ParseSize(FormatSize(n))
		if err != nil || got != n {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d, %v", n, got, err)
		}
	}
	for _, s := range []string{"", "\n", "12", "012\n", "12\n\n", " 12\n", "12 \n", "-1\n", "1e3\n"} {
		if _, err := ParseSize([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}

func TestCosignatureLinesRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"— w AAAA",          // no newline
		"- w AAAA\n",        // ASCII hyphen
		"— w\n",             // no signature
		"— w AA AA\n",       // space in signature
		"— w %%%%\n",        // not base64
		"— w AAAA\n\n",      // empty line
		"— w AAAA\nhello\n", // trailing junk
	} {
		if _, err := CosignatureLines([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("CosignatureLines(%q) accepted", s)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	if raw, err := os.ReadFile(requestVector); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("old 0\n\no\n0\nAAAA\n\n— o AAAA\n"))
	f.Add([]byte("old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		// Whatever parses is canonical: formatting it gives the input back.
		if got := FormatRequest(r); !bytes.Equal(got, body) {
			t.Fatalf("FormatRequest(ParseRequest(%q)) = %q", body, got)
		}
		if len(r.Proof) > MaxProofHashes || len(r.Checkpoint) == 0 {
			t.Fatalf("accepted %d proof lines, %d checkpoint bytes", len(r.Proof), len(r.Checkpoint))
		}
	})
}

func FuzzParseSize(f *testing.F) {
	f.Add([]byte("20852163\n"))
	f.Add([]byte("0\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseSize(body)
		if err == nil && !bytes.Equal(FormatSize(n), body) {
			t.Fatalf("ParseSize accepted non-canonical %q", body)
		}
	})
}

func FuzzCosignatureLines(f *testing.F) {
	if raw, err := os.ReadFile(responseVector); err == nil {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		lines, err := CosignatureLines(body)
		if err == nil && !bytes.Equal(bytes.Join(lines, nil), body) {
			t.Fatalf("lines do not add up to the body %q", body)
		}
	})
}
