package jcs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gowebpki/jcs"
)

func TestCanonicalizeExamples(t *testing.T) {
	for in, want := range map[string]string{
		// RFC 8785 §3.2.3 sorting example (names as UTF-16 code units).
		`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		// RFC 8785 §3.2.2 numbers and literals.
		`{ "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "literals": [null, true, false] }`: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}`,
		`{"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}`:                                                            `{"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		` [ -0 , 1.0 , 100000000000000000000 , 12 ] `:                                                                           `[0,1,100000000000000000000,12]`,
		`"\u2028"`: "\"\u2028\"",
	} {
		got, err := Canonicalize([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(got) != want {
			t.Errorf("Canonicalize(%s)\n got %s\nwant %s", in, got, want)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":1,"a":2}`, `[1,]`, `{"a" 1}`, `01`, `1.`, `-`, `"\ud800"`, `"\udc00\ud800"`, `"a` + "\x01" + `"`, "\"\xff\"", `tru`, `1 2`, `{"a":1}x`, `NaN`, `1e400`} {
		if out, err := Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%q) accepted: %s", bad, out)
		}
	}
}

// The entry vectors are canonical: Canonicalize is the identity on them and
// agrees with gowebpki/jcs.
func TestCanonicalizeAgreesOnVectors(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	files = append(files, mustGlob(t, filepath.Join(vectorDir, "invalid", "*.json"))...)
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		ours, err1 := Canonicalize(raw)
		theirs, err2 := jcs.Transform(raw)
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(ours, theirs) {
			t.Errorf("%s: ours %q %v, jcs %q %v", f, ours, err1, theirs, err2)
		}
	}
}

func mustGlob(t *testing.T, p string) []string {
	m, err := filepath.Glob(p)
	if err != nil || len(m) == 0 {
		t.Fatalf("no files match %s", p)
	}
	return m
}

// FuzzCanonicalize differentially checks Canonicalize against
// github.com/gowebpki/jcs: the same output, or both refuse.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x\u0001"]}`, `{"\ud83d\ude00":1,"\ufb33":2}`, `[1e21,1e-7,0.1,-0]`, `"\\\/"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ours, err1 := Canonicalize(in)
		theirs, err2 := jcs.Transform(in)
		if err1 != nil || err2 != nil {
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("disagree on %q: ours %q %v; jcs %q %v", in, ours, err1, theirs, err2)
			}
			return
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("differ on %q:\n ours %q\n jcs  %q", in, ours, theirs)
		}
		again, err := Canonicalize(ours)
		if err != nil || !bytes.Equal(again, ours) {
			t.Fatalf("not idempotent on %q", ours)
		}
	})
}

// BenchmarkCanonicalize compares Canonicalize with gowebpki/jcs.Transform on
// the entry vectors, in the same run.
func BenchmarkCanonicalize(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	var inputs [][]byte
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		if bytes.HasPrefix(raw, []byte("{")) && bytes.Contains(raw, []byte(`"kind"`)) {
			inputs = append(inputs, raw)
		}
	}
	var ns [2]float64
	for i, impl := range []struct {
		name string
		f    func([]byte) ([]byte, error)
	}{{"ztlog", Canonicalize}, {"gowebpki-jcs", jcs.Transform}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				for _, in := range inputs {
					if _, err := impl.f(in); err != nil {
						b.Fatal(err)
					}
				}
			}
			ns[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N*len(inputs))
			b.ReportMetric(ns[i], "ns/entry")
		})
	}
	if ns[0] > 0 && ns[1] > 0 {
		b.Logf("speedup over gowebpki/jcs: %.1fx", ns[1]/ns[0])
	}
}

// vectorDir holds the entry vectors, whose canonical form the tests above
// compare with gowebpki/jcs.
const vectorDir = "../../testdata/entries"
