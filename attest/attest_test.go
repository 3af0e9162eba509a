package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	ita "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/zt-infra/ztlog/internal/devca"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestSignVerifyDevCA signs with an SVID from the dev CA (ECDSA P-256, as
// SPIRE issues them) and verifies with its bundle.
func TestSignVerifyDevCA(t *testing.T) {
	ca, err := devca.New(vectorTD)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := ca.IssueX509SVID(vectorAgent, devca.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p := vectorRuntimeContext()
	p.IssuedAt, p.ExpiresAt = FormatTime(now), FormatTime(now.Add(time.Minute))
	s, err := SignRuntimeContext(context.Background(), svid, vectorAction, p)
	if err != nil {
		t.Fatal(err)
	}
	got, v, err := VerifyRuntimeContext(context.Background(), s.Envelope, s.Chain, ca.X509Bundle(),
		Expect{Now: now, Signer: vectorAgent, ActionDigest: vectorAction})
	if err != nil {
		t.Fatal(err)
	}
	if got.Model != p.Model || *got.Sandbox != *p.Sandbox || got.Code != p.Code {
		t.Fatalf("predicate %+v, want %+v", got, p)
	}
	if v.Signer != vectorAgent || v.Subject != vectorAction || len(v.Chain) != 2 {
		t.Fatalf("verified %v %s, chain of %d", v.Signer, v.Subject, len(v.Chain))
	}
	// The chain travels as base64 and back.
	chain, err := DecodeChain(s.ChainBase64())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyRuntimeContext(context.Background(), s.Envelope, chain, ca.X509Bundle(),
		Expect{Now: now, Signer: vectorAgent, ActionDigest: vectorAction}); err != nil {
		t.Fatal(err)
	}
	// Another CA's bundle for the same trust domain does not verify it.
	other, _ := devca.New(vectorTD)
	if _, _, err := VerifyRuntimeContext(context.Background(), s.Envelope, s.Chain, other.X509Bundle(),
		Expect{Now: now, Signer: vectorAgent, ActionDigest: vectorAction}); !errors.Is(err, ErrChain) {
		t.Fatalf("verified against another CA: %v", err)
	}
}

// TestKeyTypes: P-384 signs and verifies; RSA SVIDs are refused when
// signing and verifying.
func TestKeyTypes(t *testing.T) {
	p := newVectorPKI(t)
	bundle := p.bundle
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	svid := &x509svid.SVID{ID: vectorBroker, PrivateKey: p384,
		Certificates: []*x509.Certificate{leaf(t, vectorBroker, 10, p384.Public(), p.ca, p.caKey)}}
	s, err := SignBrokerResult(context.Background(), svid, vectorAction, vectorBrokerResult())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyBrokerResult(context.Background(), s.Envelope, s.Chain, bundle,
		Expect{Now: vectorTime, Signer: vectorBroker, ActionDigest: vectorAction}); err != nil {
		t.Fatalf("P-384: %v", err)
	}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaSVID := &x509svid.SVID{ID: vectorBroker, PrivateKey: rsaKey,
		Certificates: []*x509.Certificate{leaf(t, vectorBroker, 11, rsaKey.Public(), p.ca, p.caKey)}}
	if _, err := SignBrokerResult(context.Background(), rsaSVID, vectorAction, vectorBrokerResult()); err == nil {
		t.Fatal("signed with an RSA SVID")
	}
	// An envelope signed by the Ed25519 agent but presented with the RSA
	// chain fails on the key type, not later.
	env := mustSign(t, p.agent, BrokerResultType, vectorAction, vectorBrokerResult())
	if _, err := Verify(context.Background(), env, [][]byte{rsaSVID.Certificates[0].Raw}, bundle, vectorTime, BrokerResultType); !errors.Is(err, ErrChain) {
		t.Fatalf("RSA chain: %v", err)
	}
}

// TestInvalidPredicatesAreNotSigned: a signer cannot produce what a
// verifier would refuse.
func TestInvalidPredicatesAreNotSigned(t *testing.T) {
	p := newVectorPKI(t)
	rc := vectorRuntimeContext()
	rc.Model.Name = ""
	if _, err := SignRuntimeContext(context.Background(), p.agent, vectorAction, rc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signed a runtime context without a model name: %v", err)
	}
	if _, err := SignRuntimeContext(context.Background(), p.agent, "sha256:XYZ", vectorRuntimeContext()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signed about a malformed action digest: %v", err)
	}
	br := vectorBrokerResult()
	br.Exit.Status = 0 // "failed" with exit 0
	if _, err := SignBrokerResult(context.Background(), p.broker, vectorAction, br); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signed a failed result with exit 0: %v", err)
	}
}

// TestVerifyNeedsTrust: no bundle, no time, no expectations: no verdict.
func TestVerifyNeedsTrust(t *testing.T) {
	p := newVectorPKI(t)
	env := mustSign(t, p.agent, RuntimeContextType, vectorAction, vectorRuntimeContext())
	chain := [][]byte{p.agent.Certificates[0].Raw}
	if _, err := Verify(context.Background(), env, chain, nil, vectorTime, RuntimeContextType); err == nil {
		t.Fatal("verified without a bundle")
	}
	if _, err := Verify(context.Background(), env, chain, p.bundle, time.Time{}, RuntimeContextType); err == nil {
		t.Fatal("verified without a time")
	}
	if _, _, err := VerifyRuntimeContext(context.Background(), env, chain, p.bundle, Expect{Now: vectorTime, ActionDigest: vectorAction}); err == nil {
		t.Fatal("verified without an expected signer")
	}
	if _, err := Verify(context.Background(), env, nil, p.bundle, vectorTime, RuntimeContextType); !errors.Is(err, ErrMalformed) {
		t.Fatalf("verified without a chain: %v", err)
	}
	big := make([]byte, MaxEnvelope+1)
	if _, err := Verify(context.Background(), big, chain, p.bundle, vectorTime, RuntimeContextType); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversize envelope: %v", err)
	}
	// A bundle of another trust domain is no trust at all.
	otherTD := x509bundle.FromX509Authorities(vectorTD, nil)
	if _, err := Verify(context.Background(), env, chain, otherTD, vectorTime, RuntimeContextType); !errors.Is(err, ErrChain) {
		t.Fatalf("empty bundle: %v", err)
	}
}

// TestVectorsDeterministic: the Ed25519 vectors regenerate byte for byte,
// so the signed payload form (JCS over protojson) is stable.
func TestVectorsDeterministic(t *testing.T) {
	p := newVectorPKI(t)
	got := mustSign(t, p.agent, RuntimeContextType, vectorAction, vectorRuntimeContext())
	want, err := os.ReadFile(filepath.Join(vectorDir, "valid", "runtime-context.dsse.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("signing the vector again gives\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(want), `"payloadType":"application/vnd.in-toto+json"`) {
		t.Fatal("vector has the wrong payloadType")
	}
}

// The fast statement reader agrees with protojson on ztlog's one form and
// leaves every other form to it.
func TestParseStatementFast(t *testing.T) {
	action := Digest([]byte("action"))
	payload := mustPayload(t, BrokerResultType, action, vectorBrokerResult())
	fst, fpred, ok := parseStatementFast(payload, BrokerResultType)
	if !ok {
		t.Fatal("the one form was not read by the fast path")
	}
	var st ita.Statement
	if err := protojson.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	var outer struct {
		Predicate jsontext.Value `json:"predicate"`
	}
	json.Unmarshal(payload, &outer)
	if fst.GetType() != st.GetType() || fst.GetPredicateType() != st.GetPredicateType() || fst.Subject[0].GetName() != st.Subject[0].GetName() ||
		fst.Subject[0].GetDigest()["sha256"] != st.Subject[0].GetDigest()["sha256"] || !bytes.Equal(fpred, outer.Predicate) {
		t.Fatalf("fast %v %s\nprotojson %v %s", fst, fpred, &st, outer.Predicate)
	}
	for name, edit := range map[string]func(string) string{
		"another spelling": func(s string) string { return strings.Replace(s, `"predicateType"`, `"predicate_type"`, 1) },
		"subject uri":      func(s string) string { return strings.Replace(s, `"name":`, `"uri":"x","name":`, 1) },
		"other type":       func(s string) string { return strings.Replace(s, BrokerResultType, RuntimeContextType, 1) },
		"duplicate member": func(s string) string { return strings.Replace(s, `{"_type"`, `{"predicateType":"x","_type"`, 1) },
	} {
		if _, _, ok := parseStatementFast([]byte(edit(string(payload))), BrokerResultType); ok {
			t.Errorf("%s: read by the fast path", name)
		}
	}
}

// The streamed pre-authentication encoding is dsse.PAE's: a signature over
// dsse.PAE verifies through verifyPAE, and one over anything else does not.
func TestVerifyPAEIsDSSEPAE(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &svidKey{pub: &key.PublicKey}
	for _, payload := range [][]byte{[]byte("{}"), bytes.Repeat([]byte("x"), 1234), {}} {
		for _, typ := range []string{PayloadType, "", "t"} {
			h := sha256.Sum256(dsse.PAE(typ, payload))
			sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
			if err != nil {
				t.Fatal(err)
			}
			if err := k.verifyPAE(typ, payload, sig); err != nil {
				t.Errorf("type %q, %d-byte payload: a signature over dsse.PAE does not verify: %v", typ, len(payload), err)
			}
			if err := k.verifyPAE(typ+"x", payload, sig); !errors.Is(err, ErrSignature) {
				t.Errorf("type %q: another type verifies (%v)", typ, err)
			}
			if err := k.verifyPAE(typ, append(bytes.Clone(payload), 'x'), sig); !errors.Is(err, ErrSignature) {
				t.Errorf("type %q: another payload verifies (%v)", typ, err)
			}
		}
	}
}
