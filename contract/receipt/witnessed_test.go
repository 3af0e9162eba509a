package receipt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// The witnessed vectors reuse the tlog-proof vectors: entry 0 of the
// example log (a decision allow) with its tlog-proof, cosigned by the one
// witness of testdata/tlog-proof/ztlog/trust.policy.
const (
	tlogVectors  = "../../testdata/tlog-proof/ztlog"
	witnessedDir = "witnessed"
)

var witnessedWant = Expect{Issuer: "example.com/ztlog-vectors", Audience: "spiffe://dev.ztlog.local/broker/local",
	Now: time.Date(2026, 11, 21, 10, 1, 0, 0, time.UTC)}

func readTLog(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join(tlogVectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func witnessedClaims(t *testing.T) Claims {
	leaf := bytes.TrimRight(readTLog(t, "decision-allow.json"), "\n")
	return Claims{
		Version: 1, Issuer: "example.com/ztlog-vectors",
		Subject: "spiffe://dev.ztlog.local/agent/demo", Audience: "spiffe://dev.ztlog.local/broker/local",
		IssuedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Unix(), Expiry: time.Date(2026, 11, 21, 10, 5, 0, 0, time.UTC).Unix(),
		ID: "rcpt-1", ActionDigest: "sha256:" + strings.Repeat("cd", 32), Decision: "allow",
		LogIndex: 0, LeafHash: base64.StdEncoding.EncodeToString(proof.LeafHash(leaf)),
		PolicyHash: "sha256:" + strings.Repeat("01", 32), CorrelationID: "c0ffee00-0000-4000-8000-000000000001",
		Assurance: Witnessed, TLogProof: string(readTLog(t, "entry-0.tlog-proof")),
	}
}

func witnessedInvalid(t *testing.T, k *Key) map[string]struct {
	token string
	v     invalidVector
} {
	c := witnessedClaims(t)
	payload, _ := json.Marshal(c)
	hdr := `{"alg":"EdDSA","kid":"` + k.ID() + `","typ":"ztlog-receipt+jwt"}`
	withClaim := func(mod func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(payload, &m)
		mod(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	out := map[string]struct {
		token string
		v     invalidVector
	}{}
	add := func(name, claims, errName, why string) {
		out[name] = struct {
			token string
			v     invalidVector
		}{rawJWS(k, hdr, claims), invalidVector{File: name + ".jws", Error: errName, Why: why}}
	}
	// The proof for entry 1 of the same checkpoint: verifies, but not for
	// this receipt's index.
	add("proof-other-index", withClaim(func(m map[string]any) { m["tlog_proof"] = string(readTLog(t, "entry-1.tlog-proof")) }), "malformed", "the tlog-proof proves another index than log_index")
	add("other-leaf", withClaim(func(m map[string]any) { m["leaf_hash"] = base64.StdEncoding.EncodeToString(make([]byte, 32)) }), "unwitnessed", "the proof does not lead from this leaf hash to the root")
	noCosig := c.TLogProof[:strings.LastIndex(strings.TrimRight(c.TLogProof, "\n"), "\n")+1]
	add("no-cosignature", withClaim(func(m map[string]any) { m["tlog_proof"] = noCosig }), "unwitnessed", "the checkpoint lacks the witness's cosignature: the quorum is not met")
	add("no-proof", withClaim(func(m map[string]any) { delete(m, "tlog_proof") }), "malformed", "witnessed without its evidence")
	add("proof-without-assurance", withClaim(func(m map[string]any) { delete(m, "assurance") }), "malformed", "a tlog_proof in a receipt that does not say it is witnessed")
	add("assurance-sequenced", withClaim(func(m map[string]any) { m["assurance"] = "sequenced" }), "malformed", "one spelling: a sequenced receipt has no assurance claim")
	return out
}

// TestWitnessedReceipts: a witnessed receipt verifies offline with the
// trust policy alone; without the policy, or with evidence that does not
// hold, it is refused (issue 18 finding 4).
func TestWitnessedReceipts(t *testing.T) {
	k := testVectorKey(t)
	wdir := filepath.Join(dir, witnessedDir)
	if *update {
		os.MkdirAll(wdir, 0o755)
		tok, err := k.Sign(witnessedClaims(t))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(witnessedDir, "valid.jws"), []byte(tok+"\n"))
		cb, _ := json.MarshalIndent(witnessedClaims(t), "", "  ")
		write(t, filepath.Join(witnessedDir, "valid.claims.json"), append(cb, '\n'))
		write(t, filepath.Join(witnessedDir, "trust.policy"), readTLog(t, "trust.policy"))
		var vs []invalidVector
		for name, c := range witnessedInvalid(t, k) {
			write(t, filepath.Join(witnessedDir, name+".jws"), []byte(c.token+"\n"))
			vs = append(vs, c.v)
		}
		sortVectors(vs)
		vb, _ := json.MarshalIndent(vs, "", "  ")
		write(t, filepath.Join(witnessedDir, "vectors.json"), append(vb, '\n'))
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(read(t, "jwks.json"), &jwks); err != nil {
		t.Fatal(err)
	}
	pol, err := trustpolicy.Parse(read(t, filepath.Join(witnessedDir, "trust.policy")))
	if err != nil {
		t.Fatal(err)
	}
	want := witnessedWant
	want.Witnesses = pol
	tok := strings.TrimSpace(string(read(t, filepath.Join(witnessedDir, "valid.jws"))))
	c, err := Verify(tok, &jwks, want)
	if err != nil {
		t.Fatalf("witnessed valid.jws: %v", err)
	}
	var wantClaims Claims
	json.Unmarshal(read(t, filepath.Join(witnessedDir, "valid.claims.json")), &wantClaims)
	if *c != wantClaims {
		t.Fatalf("claims %+v, want %+v", *c, wantClaims)
	}
	// Without the policy a witnessed receipt cannot be checked: refused.
	if _, err := Verify(tok, &jwks, witnessedWant); !errors.Is(err, ErrUnwitnessed) {
		t.Errorf("witnessed receipt without a witness policy: %v, want ErrUnwitnessed", err)
	}
	// A verifier that requires witnessed refuses a sequenced receipt.
	seq := strings.TrimSpace(string(read(t, "valid.jws")))
	strict := vectorWant
	strict.RequireWitnessed = true
	if _, err := Verify(seq, &jwks, strict); !errors.Is(err, ErrUnwitnessed) {
		t.Errorf("sequenced receipt where witnessed is required: %v, want ErrUnwitnessed", err)
	}
	var vs []invalidVector
	if err := json.Unmarshal(read(t, filepath.Join(witnessedDir, "vectors.json")), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 6 {
		t.Fatalf("only %d invalid witnessed vectors", len(vs))
	}
	sentinels := map[string]error{"malformed": ErrMalformed, "unwitnessed": ErrUnwitnessed}
	for _, v := range vs {
		tok := strings.TrimSpace(string(read(t, filepath.Join(witnessedDir, v.File))))
		if _, err := Verify(tok, &jwks, want); !errors.Is(err, sentinels[v.Error]) {
			t.Errorf("%s (%s): err = %v, want %s", v.File, v.Why, err, v.Error)
		}
	}
}
