package trustpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/policy")

const vectorDir = "../../testdata/policy"

// policies builds the vector policies from the test vector keys.
func policies(t testing.TB) map[string]string {
	_, logV := testLogKey(t, "example.com/log")
	_, otherLogV := testLogKey(t, "example.org/other-log")
	w := map[string]string{}
	for _, n := range []string{"X1", "X2", "X3", "Y1", "Y2"} {
		_, w[n] = testWitnessKey(t, "witness.example/"+n)
	}
	_, w["Y3"] = testMLDSAWitnessKey(t, "witness.example/Y3")
	_, w["dupX1"] = testWitnessKey(t, "witness.example/X1")
	return map[string]string{
		"valid/spec-example.policy": "log " + logV + "\n\n" +
			"witness X1 " + w["X1"] + "\n" +
			"witness X2 " + w["X2"] + "\n" +
			"witness X3 " + w["X3"] + "\n" +
			"group X-witnesses 2 X1 X2 X3\n\n" +
			"witness Y1 " + w["Y1"] + "\n" +
			"witness Y2 " + w["Y2"] + "\n" +
			"witness Y3 " + w["Y3"] + "\n" +
			"group Y-witnesses any Y1 Y2 Y3\n\n" +
			"group X-and-Y all X-witnesses Y-witnesses\n" +
			"quorum X-and-Y\n",
		"valid/no-witnesses.policy": "log " + logV + " https://example.com/log/\nquorum none\n",
		"valid/whitespace-and-comments.policy": "# a comment line\n\t  # an indented comment\n   \n" +
			"\tlog\t" + logV + "   \n" +
			"log " + otherLogV + "\n" +
			"witness   X1 \t " + w["X1"] + "   https://witness.example/X1/\n" +
			"quorum X1", // no final newline
		"valid/non-ascii-names.policy": "log " + logV + "\n" +
			"witness K " + w["X1"] + "\n" +
			"witness \u212a " + w["X2"] + "\n" +
			"group \u00e9quipe all K \u212a\nquorum \u00e9quipe\n",

		"invalid/no-quorum.policy":            "log " + logV + "\n",
		"invalid/two-quorums.policy":          "log " + logV + "\nquorum none\nquorum none\n",
		"invalid/quorum-undefined.policy":     "log " + logV + "\nquorum X1\n",
		"invalid/forward-reference.policy":    "group g any X1\nwitness X1 " + w["X1"] + "\nquorum g\n",
		"invalid/name-reused.policy":          "witness X1 " + w["X1"] + "\ngroup X1 any X1\nquorum X1\n",
		"invalid/none-as-name.policy":         "witness none " + w["X1"] + "\nquorum none\n",
		"invalid/none-as-member.policy":       "witness X1 " + w["X1"] + "\ngroup g any X1 none\nquorum g\n",
		"invalid/member-twice.policy":         "witness X1 " + w["X1"] + "\ngroup g 2 X1 X1\nquorum g\n",
		"invalid/threshold-zero.policy":       "witness X1 " + w["X1"] + "\ngroup g 0 X1\nquorum g\n",
		"invalid/threshold-too-big.policy":    "witness X1 " + w["X1"] + "\ngroup g 2 X1\nquorum g\n",
		"invalid/threshold-leading-0.policy":  "witness X1 " + w["X1"] + "\nwitness X2 " + w["X2"] + "\ngroup g 02 X1 X2\nquorum g\n",
		"invalid/threshold-sign.policy":       "witness X1 " + w["X1"] + "\ngroup g +1 X1\nquorum g\n",
		"invalid/group-no-members.policy":     "witness X1 " + w["X1"] + "\ngroup g any\nquorum g\n",
		"invalid/unknown-keyword.policy":      "log " + logV + "\nwitnesses X1 " + w["X1"] + "\nquorum none\n",
		"invalid/crlf.policy":                 "log " + logV + "\r\nquorum none\r\n",
		"invalid/control-char.policy":         "log " + logV + "\nquorum\vnone\n",
		"invalid/key-id-altered.policy":       "log " + alterKeyID(logV) + "\nquorum none\n",
		"invalid/key-not-base64.policy":       "log example.com/log+01234567+not*base64\nquorum none\n",
		"invalid/key-no-plus.policy":          "witness X1 example.com/w1\nquorum X1\n",
		"invalid/witness-log-key-type.policy": "witness E " + ecdsaVKey + "\nquorum E\n",
		"invalid/trailing-comment.policy":     "log " + logV + " https://example.com/ # the log\nquorum none\n",
		"invalid/log-listed-twice.policy":     "log " + logV + "\nlog " + logV + " https://mirror.example/\nquorum none\n",
		"invalid/witness-key-twice.policy":    "witness X1 " + w["X1"] + "\nwitness X1b " + renameKey(t, w["dupX1"]) + "\nquorum X1\n",
		"invalid/witness-no-key.policy":       "witness X1\nquorum X1\n",
		"invalid/quorum-two-names.policy":     "witness X1 " + w["X1"] + "\nquorum X1 X1\n",
		"invalid/witness-is-the-log.policy":   "log " + logV + "\nwitness L " + logV + "\nquorum L\n",
		"invalid/log-is-a-witness.policy":     "witness L " + logV + "\nlog " + logV + "\nquorum L\n",
	}
}

// ecdsaVKey is a syntactically valid ECDSA (type 0x02) note key.
var ecdsaVKey = func() string {
	// A fixed P-256 public key in PKIX DER (test vector).
	der := []byte{0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04}
	for i := 0; i < 64; i++ {
		der = append(der, byte(i))
	}
	_, v := keyPair("ecdsa.example", TypeECDSA, der, nil)
	return v
}()

func alterKeyID(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	b := []byte(parts[1])
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return parts[0] + "+" + string(b) + "+" + parts[2]
}

// renameKey returns the same public key under another key name (with the
// key ID recomputed), which the policy must still see as the same key.
func renameKey(t testing.TB, vkey string) string {
	_, typ, key, err := parseVKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	_, v := keyPair("witness.example/X1-renamed", typ, key, nil)
	return v
}

type invalidVector struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Contains string `json:"contains"`
}

// The expected refusal of each invalid vector: the line and a phrase of
// the message.
var invalidWant = map[string]invalidVector{
	"no-quorum.policy":            {Line: 0, Contains: "no quorum line"},
	"two-quorums.policy":          {Line: 3, Contains: "second quorum line (the first is line 2)"},
	"quorum-undefined.policy":     {Line: 2, Contains: `quorum "X1" is not a witness or group defined on an earlier line`},
	"forward-reference.policy":    {Line: 1, Contains: `member "X1" is not a witness or group defined on an earlier line`},
	"name-reused.policy":          {Line: 2, Contains: `name "X1" is already used by the witness on line 1`},
	"none-as-name.policy":         {Line: 1, Contains: "predefined quorum name"},
	"none-as-member.policy":       {Line: 2, Contains: `"none" cannot be a group member`},
	"member-twice.policy":         {Line: 2, Contains: `lists "X1" twice`},
	"threshold-zero.policy":       {Line: 2, Contains: `threshold "0"`},
	"threshold-too-big.policy":    {Line: 2, Contains: "want 1 <= k <= 1"},
	"threshold-leading-0.policy":  {Line: 3, Contains: `threshold "02"`},
	"threshold-sign.policy":       {Line: 2, Contains: `threshold "+1"`},
	"group-no-members.policy":     {Line: 2, Contains: "at least one member"},
	"unknown-keyword.policy":      {Line: 2, Contains: `unknown keyword "witnesses"`},
	"crlf.policy":                 {Line: 1, Contains: "carriage return"},
	"control-char.policy":         {Line: 2, Contains: "control character 0x0B"},
	"key-id-altered.policy":       {Line: 1, Contains: "does not match the key"},
	"key-not-base64.policy":       {Line: 1, Contains: "not standard base64"},
	"key-no-plus.policy":          {Line: 1, Contains: "not a verifier key"},
	"witness-log-key-type.policy": {Line: 1, Contains: "signature type 0x02"},
	"trailing-comment.policy":     {Line: 1, Contains: "comments are whole lines"},
	"log-listed-twice.policy":     {Line: 2, Contains: "same public key as the log on line 1"},
	"witness-key-twice.policy":    {Line: 2, Contains: `same public key as witness "X1"`},
	"witness-no-key.policy":       {Line: 1, Contains: `want "witness <name> <vkey> [<url>]"`},
	"quorum-two-names.policy":     {Line: 2, Contains: `want "quorum <name>"`},
	"witness-is-the-log.policy":   {Line: 2, Contains: "a log cannot witness itself"},
	"log-is-a-witness.policy":     {Line: 2, Contains: "a log cannot witness itself"},
}

type validVector struct {
	File      string `json:"file"`
	Logs      int    `json:"logs"`
	Witnesses int    `json:"witnesses"`
	Groups    int    `json:"groups"`
	Quorum    string `json:"quorum"`
	// Canonical is Marshal's output for the policy.
	Canonical string `json:"canonical"`
}

func writeOrRead(t *testing.T, rel string, content []byte) []byte {
	t.Helper()
	path := filepath.Join(vectorDir, rel)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/trustpolicy -update to create the vectors)", err)
	}
	return b
}

func readVector(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, rel))
	if err != nil {
		t.Fatalf("%v (run go test ./internal/trustpolicy -update to create the vectors)", err)
	}
	return b
}

func writeOrReadJSON(t *testing.T, rel string, v any, into any) {
	t.Helper()
	b, _ := json.MarshalIndent(v, "", "  ")
	raw := writeOrRead(t, rel, append(b, '\n'))
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func TestPolicyVectors(t *testing.T) {
	ps := policies(t)
	var files []string
	for f := range ps {
		files = append(files, f)
	}
	sort.Strings(files)
	var valid []validVector
	var invalid []invalidVector
	for _, f := range files {
		raw := writeOrRead(t, f, []byte(ps[f]))
		if string(raw) != ps[f] {
			t.Errorf("%s: the vector differs from the policy the test builds (keys changed?); run -update and review", f)
		}
		p, err := Parse(raw)
		if strings.HasPrefix(f, "valid/") {
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			q := "none"
			if p.Quorum != nil {
				q = p.Quorum.MemberName()
			}
			valid = append(valid, validVector{File: filepath.Base(f), Logs: len(p.Logs), Witnesses: len(p.Witnesses), Groups: len(p.Groups), Quorum: q, Canonical: string(p.Marshal())})
			again, err := Parse(p.Marshal())
			if err != nil || !bytes.Equal(again.Marshal(), p.Marshal()) {
				t.Errorf("%s: Parse(Marshal(p)) does not give p back: %v", f, err)
			}
			continue
		}
		name := filepath.Base(f)
		want, ok := invalidWant[name]
		if !ok {
			t.Errorf("%s: no expected error listed", name)
			continue
		}
		want.File = name
		invalid = append(invalid, want)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: accepted or wrong error type: %v", name, err)
			continue
		}
		if se.Line != want.Line || !strings.Contains(se.Msg, want.Contains) {
			t.Errorf("%s: got line %d %q; want line %d containing %q", name, se.Line, se.Msg, want.Line, want.Contains)
		}
	}
	// The manifests record what each vector means, for other implementations.
	var gotValid []validVector
	writeOrReadJSON(t, "valid/vectors.json", valid, &gotValid)
	if len(gotValid) != len(valid) {
		t.Errorf("valid/vectors.json has %d vectors, want %d", len(gotValid), len(valid))
	}
	for i := range min(len(gotValid), len(valid)) {
		if gotValid[i] != valid[i] {
			t.Errorf("valid/vectors.json[%d] = %+v, parsing gives %+v", i, gotValid[i], valid[i])
		}
	}
	var gotInvalid []invalidVector
	writeOrReadJSON(t, "invalid/vectors.json", invalid, &gotInvalid)
	if len(gotInvalid) != len(invalid) {
		t.Errorf("invalid/vectors.json has %d vectors, want %d", len(gotInvalid), len(invalid))
	}
}

func TestSpecExampleStructure(t *testing.T) {
	p, err := Parse([]byte(policies(t)["valid/spec-example.policy"]))
	if err != nil {
		t.Fatal(err)
	}
	q, ok := p.Quorum.(*Group)
	if !ok || q.Name != "X-and-Y" || q.Threshold != 2 || len(q.Members) != 2 {
		t.Fatalf("quorum %+v", p.Quorum)
	}
	x := q.Members[0].(*Group)
	y := q.Members[1].(*Group)
	if x.Threshold != 2 || len(x.Members) != 3 || y.Threshold != 1 || len(y.Members) != 3 {
		t.Fatalf("groups %+v %+v", x, y)
	}
	if p.Witnesses[5].Type != TypeCosignatureMLDSA44 || p.Witnesses[0].Type != TypeCosignatureEd25519 {
		t.Fatalf("types %x %x", p.Witnesses[5].Type, p.Witnesses[0].Type)
	}
	if p.Logs[0].Origin != "example.com/log" || p.LogFor("example.com/log") != p.Logs[0] || p.LogFor("nope") != nil {
		t.Fatal("LogFor")
	}
	byName := map[string]*Witness{}
	for _, w := range p.Witnesses {
		byName[w.Name] = w
	}
	for _, c := range []struct {
		signed []string
		want   bool
	}{
		{nil, false},
		{[]string{"X1", "X2"}, false},
		{[]string{"X1", "Y1"}, false},
		{[]string{"X1", "X2", "Y3"}, true},
		{[]string{"X1", "X3", "Y2"}, true},
		{[]string{"X1", "X2", "X3"}, false},
		{[]string{"Y1", "Y2", "Y3", "X2"}, false},
	} {
		set := map[*Witness]bool{}
		for _, n := range c.signed {
			set[byName[n]] = true
		}
		if got := p.Satisfied(func(w *Witness) bool { return set[w] }); got != c.want {
			t.Errorf("cosigned by %v: satisfied=%v, want %v (%s)", c.signed, got, c.want, p.Explain(func(w *Witness) bool { return set[w] }))
		}
	}
}

// A plain Ed25519 note key (0x01) as a witness key is read as the same key
// for cosignature/v1, as Tessera and transparency-dev/formats read it.
func TestWitnessPlainEd25519Key(t *testing.T) {
	_, vkey := testLogKey(t, "witness.example/plain")
	p, err := Parse([]byte("witness W " + vkey + "\nquorum W\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Witnesses[0].Type != TypeEd25519 {
		t.Fatalf("type %x", p.Witnesses[0].Type)
	}
}

// Names are opaque octets: a Latin-1 byte is a name, distinct from the
// same letter in UTF-8.
func TestOpaqueNames(t *testing.T) {
	_, w1 := testWitnessKey(t, "witness.example/X1")
	_, w2 := testWitnessKey(t, "witness.example/X2")
	p, err := Parse([]byte("witness \xe9 " + w1 + "\nwitness \u00e9 " + w2 + "\ngroup g all \xe9 \u00e9\nquorum g\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Witnesses[0].Name == p.Witnesses[1].Name || len(p.Groups[0].Members) != 2 {
		t.Fatalf("names %q %q", p.Witnesses[0].Name, p.Witnesses[1].Name)
	}
}
