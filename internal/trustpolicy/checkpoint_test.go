package trustpolicy

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const testRoot = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

func body(origin string, size uint64) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, testRoot)
}

func sign(t testing.TB, text string, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cosignAt makes an Ed25519 cosignature/v1 line with a chosen timestamp.
func cosignAt(t testing.TB, name string, ts uint64, text string) string {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(seed("witness " + name))
	pk := append([]byte{TypeCosignatureEd25519}, priv.Public().(ed25519.PublicKey)...)
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, text)
	sig := binary.BigEndian.AppendUint32(nil, keyID(name, pk))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(priv, []byte(msg))...)
	return "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

type signers struct {
	log note.Signer
	w   map[string]note.Signer
}

func testSigners(t testing.TB) signers {
	s := signers{w: map[string]note.Signer{}}
	s.log, _ = testLogKey(t, "example.com/log")
	for _, n := range []string{"X1", "X2", "X3", "Y1", "Y2"} {
		s.w[n], _ = testWitnessKey(t, "witness.example/"+n)
	}
	s.w["Y3"], _ = testMLDSAWitnessKey(t, "witness.example/Y3")
	return s
}

func (s signers) pick(names ...string) []note.Signer {
	out := []note.Signer{s.log}
	for _, n := range names {
		out = append(out, s.w[n])
	}
	return out
}

type checkpointVector struct {
	Note      string   `json:"note"`
	Policy    string   `json:"policy"`
	Want      string   `json:"want"` // "valid" or the error: malformed, unknown-log, log-signature, origin, quorum
	Cosigned  []string `json:"cosigned,omitempty"`
	Rejected  []string `json:"rejected,omitempty"`
	Unknown   int      `json:"unknown,omitempty"`
	Reason    string   `json:"reason"`
	noteBytes []byte
}

// checkpointCases builds the checkpoint vectors. Cosignatures carry the
// time they are made, so the files are only rewritten with -update.
func checkpointCases(t *testing.T) []checkpointVector {
	s := testSigners(t)
	b := body("example.com/log", 12345)
	full := sign(t, b, s.pick("X1", "X2", "Y3")...)
	tampered := []byte(strings.Replace(string(full), "\n12345\n", "\n12346\n", 1))
	badCosig := corruptLine(t, sign(t, b, s.pick("X1", "X2", "X3", "Y1")...), "witness.example/X2")
	unknownSigner, _ := testWitnessKey(t, "stranger.example/w")
	withUnknown := sign(t, b, s.pick("X1", "X3", "Y2")[0], s.w["X1"], unknownSigner, s.w["X3"], s.w["Y2"])
	future := append(sign(t, b, s.pick("X1", "Y1")...), cosignAt(t, "witness.example/X2", 4102444800, b)...)
	past := append(sign(t, b, s.pick("X1", "Y1")...), cosignAt(t, "witness.example/X2", 1700000000, b)...)
	otherOrigin, _ := testLogKey(t, "example.com/log")
	return []checkpointVector{
		{Note: "quorum-met.note", Policy: "spec-example.policy", Want: "valid", Cosigned: []string{"X1", "X2", "Y3"}, Reason: "log signature, 2 of X (Ed25519), 1 of Y (ML-DSA-44)", noteBytes: full},
		{Note: "quorum-short.note", Policy: "spec-example.policy", Want: "quorum", Cosigned: []string{"X1", "Y1"}, Reason: "only 1 of the 2 X witnesses", noteBytes: sign(t, b, s.pick("X1", "Y1")...)},
		{Note: "no-cosignatures.note", Policy: "no-witnesses.policy", Want: "valid", Reason: "quorum none", noteBytes: sign(t, b, s.log)},
		{Note: "witnesses-only.note", Policy: "spec-example.policy", Want: "unknown-log", Reason: "no log signature", noteBytes: sign(t, b, s.w["X1"], s.w["X2"], s.w["Y1"])},
		{Note: "tampered-size.note", Policy: "spec-example.policy", Want: "log-signature", Reason: "tree size changed after signing", noteBytes: tampered},
		{Note: "bad-cosignature.note", Policy: "spec-example.policy", Want: "valid", Cosigned: []string{"X1", "X3", "Y1"}, Rejected: []string{"X2"}, Reason: "X2's line is corrupted; X1 and X3 still meet X", noteBytes: badCosig},
		{Note: "unknown-signer.note", Policy: "spec-example.policy", Want: "valid", Cosigned: []string{"X1", "X3", "Y2"}, Unknown: 1, Reason: "a signature by a key not in the policy is ignored", noteBytes: withUnknown},
		{Note: "future-cosignature.note", Policy: "spec-example.policy", Want: "quorum", Cosigned: []string{"X1", "Y1"}, Rejected: []string{"X2"}, Reason: "X2's cosignature is dated 2100", noteBytes: future},
		{Note: "past-cosignature.note", Policy: "spec-example.policy", Want: "valid", Cosigned: []string{"X1", "Y1", "X2"}, Reason: "X2's cosignature is dated 2023", noteBytes: past},
		{Note: "wrong-origin.note", Policy: "spec-example.policy", Want: "origin", Reason: "signed by the policy log, origin line is another log", noteBytes: sign(t, body("example.com/other", 1), otherOrigin)},
		{Note: "leading-zero-size.note", Policy: "spec-example.policy", Want: "malformed", Reason: "tree size 012", noteBytes: sign(t, "example.com/log\n012\n"+testRoot+"\n", s.log)},
		{Note: "not-a-note.note", Policy: "spec-example.policy", Want: "malformed", Reason: "no signature block", noteBytes: []byte(b)},
	}
}

var wantErr = map[string]error{
	"malformed":     ErrMalformedCheckpoint,
	"unknown-log":   ErrUnknownLog,
	"log-signature": ErrLogSignature,
	"origin":        ErrOrigin,
	"quorum":        ErrQuorum,
}

func TestCheckpointVectors(t *testing.T) {
	cases := checkpointCases(t)
	var manifest []checkpointVector
	for _, c := range cases {
		if *update {
			writeOrRead(t, "checkpoints/"+c.Note, c.noteBytes)
		}
		manifest = append(manifest, c)
	}
	var recorded []checkpointVector
	writeOrReadJSON(t, "checkpoints/vectors.json", manifest, &recorded)
	if len(recorded) != len(cases) {
		t.Fatalf("checkpoints/vectors.json has %d vectors, the test %d", len(recorded), len(cases))
	}
	for _, v := range recorded {
		t.Run(v.Note, func(t *testing.T) {
			p, err := Parse(readVector(t, "valid/"+v.Policy))
			if err != nil {
				t.Fatal(err)
			}
			raw := readVector(t, "checkpoints/"+v.Note)
			cp, err := p.VerifyCheckpoint(raw, VerifyOptions{Now: time.Now()})
			if v.Want == "valid" {
				if err != nil {
					t.Fatalf("%v", err)
				}
			} else if !errors.Is(err, wantErr[v.Want]) {
				t.Fatalf("got %v, want %s", err, v.Want)
			}
			if cp == nil {
				return
			}
			if cp.Origin != "example.com/log" || cp.Size != 12345 || cp.Log != p.Logs[0] {
				t.Errorf("checkpoint %s %d log %v", cp.Origin, cp.Size, cp.Log)
			}
			if got := names(cp.Cosignatures); strings.Join(got, ",") != strings.Join(sorted(v.Cosigned), ",") {
				t.Errorf("cosigned %v, want %v", got, v.Cosigned)
			}
			var rej []string
			for _, r := range cp.Rejected {
				rej = append(rej, r.Witness.Name)
			}
			if strings.Join(rej, ",") != strings.Join(v.Rejected, ",") {
				t.Errorf("rejected %v, want %v", cp.Rejected, v.Rejected)
			}
			if len(cp.Unknown) != v.Unknown {
				t.Errorf("unknown %v, want %d", cp.Unknown, v.Unknown)
			}
		})
	}
}

func names(cs []Cosignature) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Witness.Name)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestQuorumExplanation(t *testing.T) {
	p, err := Parse([]byte(policies(t)["valid/spec-example.policy"]))
	if err != nil {
		t.Fatal(err)
	}
	s := testSigners(t)
	_, err = p.VerifyCheckpoint(sign(t, body("example.com/log", 7), s.pick("X1", "Y1")...), VerifyOptions{})
	want := `witness quorum not met: quorum "X-and-Y" not met: group "X-and-Y" has 1 of the 2 it needs (Y-witnesses); group "X-witnesses" has 1 of the 2 it needs (X1); cosigned by X1, Y1`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestCosignatureTimes(t *testing.T) {
	p, err := Parse([]byte(policies(t)["valid/spec-example.policy"]))
	if err != nil {
		t.Fatal(err)
	}
	b := body("example.com/log", 3)
	s := testSigners(t)
	raw := append(sign(t, b, s.pick("X1", "Y1")...), cosignAt(t, "witness.example/X2", 1700000000, b)...)
	cp, err := p.VerifyCheckpoint(raw, VerifyOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cp.Cosignatures {
		if c.Witness.Name == "X2" && !c.Time.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("X2 time %v", c.Time)
		}
	}
	// Ten minutes before the cosignature, it is in the future.
	cp, err = p.VerifyCheckpoint(raw, VerifyOptions{Now: time.Unix(1700000000-600, 0)})
	if !errors.Is(err, ErrQuorum) || len(cp.Rejected) != 3 {
		t.Fatalf("got %v, rejected %v", err, cp.Rejected)
	}
}

func TestPolicyWithoutLog(t *testing.T) {
	_, w := testWitnessKey(t, "witness.example/X1")
	p, err := Parse([]byte("witness X1 " + w + "\nquorum X1\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := testSigners(t)
	if _, err := p.VerifyCheckpoint(sign(t, body("example.com/log", 1), s.pick("X1")...), VerifyOptions{}); !errors.Is(err, ErrUnknownLog) {
		t.Fatalf("got %v", err)
	}
}

// corruptLine flips the last signature byte of name's line, keeping its
// key name and ID.
func corruptLine(t testing.TB, signed []byte, name string) []byte {
	t.Helper()
	lines := strings.Split(string(signed), "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "— "+name+" "); ok {
			sig, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				t.Fatal(err)
			}
			sig[len(sig)-1] ^= 1
			lines[i] = "— " + name + " " + base64.StdEncoding.EncodeToString(sig)
			return []byte(strings.Join(lines, "\n"))
		}
	}
	t.Fatalf("no line for %s", name)
	return nil
}
