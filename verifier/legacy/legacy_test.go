package legacy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the control-plane vectors in testdata/legacy")

const vectorDir = "../../testdata/legacy"

// testKMSKey is a TEST VECTOR KEY: its scalar is SHA-256 of a public seed
// string, so anyone can recompute it. It stands in for a KMS key.
func testKMSKey(t testing.TB) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte("ztlog test vector key: legacy KMS ECC_NIST_P256"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatalf("%v (run go test ./verifier/legacy -update)", err)
	}
	return b
}

// controlPlaneRecord builds a record in the control-plane form, hashed and
// signed (KMS MessageType DIGEST: ECDSA over the 32-byte digest).
func controlPlaneRecord(t testing.TB, k *ecdsa.PrivateKey, actor, action, resource, decision, reason, ts, prev string) map[string]any {
	in := map[string]string{"actor": actor, "action": action, "resource": resource, "decision": decision, "reason": reason, "timestamp": ts, "previous_hash": prev}
	// encoding/json sorts map keys; SetEscapeHTML(false) matches
	// JSON.stringify for the characters used here.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(in)
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"ok": decision == "allow", "actor": actor, "action": action, "resource": resource, "decision": decision, "reason": reason,
		"audit": map[string]any{
			"timestamp": ts, "previous_hash": prev, "current_hash": hex.EncodeToString(sum[:]),
			"kms_signature": map[string]string{"algorithm": "ECDSA_SHA_256", "key_id": "arn:aws:kms:eu-west-1:000000000000:key/test-vector", "signature": base64.StdEncoding.EncodeToString(sig)},
		},
	}
}

// TestWriteVectors makes the control-plane chain vector (ECDSA signatures
// are randomized, so it only writes with -update) and the public key.
func TestWriteVectors(t *testing.T) {
	if !*update {
		t.Skip("vectors are rewritten only with -update")
	}
	k := testKMSKey(t)
	prev := Genesis
	var out bytes.Buffer
	for _, r := range []struct{ actor, action, resource, decision, reason, ts string }{
		{"spiffe://prod.example/agent/billing", "db.query", "db://ledger/invoices", "allow", "Policy permits read-only queries.", "2026-04-30T10:00:00.000Z"},
		{"spiffe://prod.example/agent/billing", "db.drop_table", "db://ledger/invoices", "deny", "Destructive statements need approval <ops & security>.", "2026-04-30T10:00:01.250Z"},
		{"spiffe://prod.example/agent/support", "mail.send", "mailto:client@example.com", "allow", "Résumé sent to the client — approved.", "2026-04-30T10:00:02.500Z"},
	} {
		rec := controlPlaneRecord(t, k, r.actor, r.action, r.resource, r.decision, r.reason, r.ts, prev)
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		enc.Encode(rec)
		prev = rec["audit"].(map[string]any)["current_hash"].(string)
	}
	if err := os.WriteFile(filepath.Join(vectorDir, "control-plane-chain.jsonl"), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	os.WriteFile(filepath.Join(vectorDir, "kms-test-key.pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

func verdicts(rep *Report) string {
	var s []string
	for _, r := range rep.Records {
		for _, c := range r.Checks {
			s = append(s, string(c.Verdict))
		}
	}
	return strings.Join(s, ",")
}

func mustRead(t testing.TB, b []byte) []Record {
	t.Helper()
	recs, err := ReadRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func testKey(t testing.TB) *ecdsa.PublicKey {
	k, err := ParseKMSPublicKey(readVector(t, "kms-test-key.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(testKMSKey(t).Public()) {
		t.Fatal("kms-test-key.pub.pem is not the test vector key")
	}
	return k
}

// The field fixture: its hash verifies (starter-adapter form), its
// placeholder signature is unverifiable — with or without a key — and so
// the record is not valid unless signatures are explicitly skipped.
func TestFieldFixture(t *testing.T) {
	recs := mustRead(t, readVector(t, "denied-audit.json"))
	for _, opts := range []Options{{}, {KMSKey: testKey(t)}} {
		rep := Verify(recs, opts)
		if got := verdicts(rep); got != "pass,pass,unverifiable" {
			t.Fatalf("verdicts %s", got)
		}
		if rep.Valid || rep.FirstProblem == nil || rep.FirstProblem.Name != "record 0: kms_signature" || !strings.Contains(rep.FirstProblem.Detail, "MOCK_ECDSA_SHA_256") {
			t.Fatalf("report %+v", rep)
		}
		if rep.Records[0].Form != FormStarter {
			t.Fatalf("form %q", rep.Records[0].Form)
		}
	}
	rep := Verify(recs, Options{HashOnly: true})
	if !rep.Valid || verdicts(rep) != "pass,pass,skipped" {
		t.Fatalf("hash only: %+v", rep)
	}
}

func TestControlPlaneChain(t *testing.T) {
	raw := readVector(t, "control-plane-chain.jsonl")
	key := testKey(t)
	rep := Verify(mustRead(t, raw), Options{KMSKey: key})
	if !rep.Valid || verdicts(rep) != strings.TrimSuffix(strings.Repeat("pass,", 9), ",") {
		t.Fatalf("%s %+v", verdicts(rep), rep.FirstProblem)
	}
	for _, r := range rep.Records {
		if r.Form != FormControlPlane {
			t.Fatalf("record %d form %q", r.Index, r.Form)
		}
	}
	// The same records as a JSON array.
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	arr := "[" + strings.Join(lines, ",\n") + "]"
	if rep := Verify(mustRead(t, []byte(arr)), Options{KMSKey: key}); !rep.Valid {
		t.Fatalf("array: %+v", rep.FirstProblem)
	}
	// Without the key the signatures are unverifiable, not valid.
	if rep := Verify(mustRead(t, raw), Options{}); rep.Valid || rep.FirstProblem.Verdict != Unverifiable || !strings.Contains(rep.FirstProblem.Detail, "Options.KMSKey") {
		t.Fatalf("no key: %+v", rep.FirstProblem)
	}
	// Another key: every signature fails.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if rep := Verify(mustRead(t, raw), Options{KMSKey: &other.PublicKey}); verdicts(rep) != "pass,pass,fail,pass,pass,fail,pass,pass,fail" {
		t.Fatalf("other key: %s", verdicts(rep))
	}

	tamper := func(edit func(recs []map[string]any) []map[string]any) []Record {
		var recs []map[string]any
		for _, l := range lines {
			var m map[string]any
			json.Unmarshal([]byte(l), &m)
			recs = append(recs, m)
		}
		recs = edit(recs)
		var b bytes.Buffer
		for _, r := range recs {
			j, _ := json.Marshal(r)
			b.Write(j)
			b.WriteByte('\n')
		}
		return mustRead(t, b.Bytes())
	}
	audit := func(r map[string]any) map[string]any { return r["audit"].(map[string]any) }
	for _, c := range []struct {
		name  string
		edit  func([]map[string]any) []map[string]any
		first string
	}{
		{"decision changed", func(r []map[string]any) []map[string]any { r[1]["decision"] = "allow"; return r }, "record 1: current_hash"},
		{"reason changed", func(r []map[string]any) []map[string]any { r[2]["reason"] = "Resume sent"; return r }, "record 2: current_hash"},
		{"record dropped", func(r []map[string]any) []map[string]any { return []map[string]any{r[0], r[2]} }, "record 1: previous_hash"},
		{"records swapped", func(r []map[string]any) []map[string]any { return []map[string]any{r[0], r[2], r[1]} }, "record 1: previous_hash"},
		{"first dropped", func(r []map[string]any) []map[string]any { return r[1:] }, "record 0: previous_hash"},
		{"signature swapped", func(r []map[string]any) []map[string]any {
			audit(r[0])["kms_signature"], audit(r[1])["kms_signature"] = audit(r[1])["kms_signature"], audit(r[0])["kms_signature"]
			return r
		}, "record 0: kms_signature"},
		{"signature not base64", func(r []map[string]any) []map[string]any {
			audit(r[2])["kms_signature"].(map[string]any)["signature"] = "mock-signature"
			return r
		}, "record 2: kms_signature"},
	} {
		rep := Verify(tamper(c.edit), Options{KMSKey: key})
		if rep.Valid || rep.FirstProblem.Name != c.first {
			t.Errorf("%s: first problem %+v, want %s", c.name, rep.FirstProblem, c.first)
		}
	}
}

// The control-plane form written by Python's json.dumps (non-ASCII as
// \uXXXX) is recognized too.
func TestControlPlaneASCIIEscapes(t *testing.T) {
	rec := Record{
		Actor: json.RawMessage(`"agent"`), Action: json.RawMessage(`"mail.send"`), Resource: json.RawMessage(`"x"`),
		Decision: json.RawMessage(`"allow"`), Reason: json.RawMessage(`"Résumé 😀"`),
		Audit: &Audit{Timestamp: json.RawMessage(`"2026-01-01T00:00:00Z"`), PreviousHash: Genesis},
	}
	in := ControlPlaneInput(rec, true)
	if want := `{"action":"mail.send","actor":"agent","decision":"allow","previous_hash":"` + Genesis + `","reason":"R\u00e9sum\u00e9 \ud83d\ude00","resource":"x","timestamp":"2026-01-01T00:00:00Z"}`; string(in) != want {
		t.Fatalf("got  %s\nwant %s", in, want)
	}
	sum := sha256.Sum256(in)
	rec.Audit.CurrentHash = hex.EncodeToString(sum[:])
	rep := Verify([]Record{rec}, Options{HashOnly: true})
	if !rep.Valid || rep.Records[0].Form != FormControlPlane {
		t.Fatalf("%+v", rep)
	}
}

func TestReadRecordsRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "  \n",
		"not json":       "audit: yes",
		"no audit":       `{"actor":"a","action":"b","resource":"c","decision":"deny","reason":"r"}`,
		"number field":   `{"actor":1,"action":"b","resource":"c","decision":"deny","reason":"r","audit":{"timestamp":"t","previous_hash":"","current_hash":""}}`,
		"missing reason": `{"actor":"a","action":"b","resource":"c","decision":"deny","audit":{"timestamp":"t","previous_hash":"","current_hash":""}}`,
		"array of nums":  `[1,2]`,
		"empty array":    `[]`,
	} {
		if _, err := ReadRecords([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseKMSPublicKeyRefuses(t *testing.T) {
	priv := testKMSKey(t)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if _, err := ParseKMSPublicKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil || !strings.Contains(err.Error(), "never a private key") {
		t.Fatalf("private key: %v", err)
	}
	if _, err := ParseKMSPublicKey([]byte("not pem")); err == nil {
		t.Fatal("accepted non-PEM")
	}
}

func FuzzVerify(f *testing.F) {
	for _, name := range []string{"denied-audit.json", "control-plane-chain.jsonl"} {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err == nil {
			f.Add(b)
		}
	}
	key := testKMSKey(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ReadRecords(b)
		if err != nil {
			return
		}
		rep := Verify(recs, Options{KMSKey: &key.PublicKey})
		if rep.Valid != (rep.FirstProblem == nil) {
			t.Fatalf("valid %v with first problem %+v", rep.Valid, rep.FirstProblem)
		}
		for _, r := range rep.Records {
			for _, c := range r.Checks {
				if c.Name == "record 0: kms_signature" && c.Verdict == Pass && recs[0].Audit.KMSSignature.Algorithm != KMSAlgorithm {
					t.Fatal("a placeholder signature passed")
				}
			}
		}
	})
}
