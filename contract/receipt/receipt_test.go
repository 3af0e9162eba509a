package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/receipts")

const dir = "../../testdata/receipts"

// testVectorKey is the published test-vector key: Ed25519 from a fixed seed.
func testVectorKey(t testing.TB) *Key {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "ztlog receipt test vector key v1")
	k, err := NewKey(ed25519.NewKeyFromSeed(seed), "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	vectorTime = time.Date(2026, 11, 21, 10, 1, 0, 0, time.UTC)
	vectorWant = Expect{Issuer: "localhost/ztlog-dev", Audience: "spiffe://dev.ztlog.local/broker/demo", Now: vectorTime}
)

func vectorClaims() Claims {
	return Claims{
		Version:       1,
		Issuer:        "localhost/ztlog-dev",
		Subject:       "spiffe://dev.ztlog.local/agent/demo",
		Audience:      "spiffe://dev.ztlog.local/broker/demo",
		IssuedAt:      time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Unix(),
		Expiry:        time.Date(2026, 11, 21, 10, 5, 0, 0, time.UTC).Unix(),
		ID:            "r-7b0c9a51e2d84f36",
		ActionDigest:  "sha256:b812ec6c23fdd1649fe50bc49a472b68dacc244ef50666fa74546a0556252244",
		Decision:      "allow",
		LogIndex:      41,
		LeafHash:      base64.StdEncoding.EncodeToString(make([]byte, 32)),
		PolicyHash:    "sha256:" + strings.Repeat("01", 32),
		CorrelationID: "c0ffee00-0000-4000-8000-000000000001",
	}
}

// rawJWS signs arbitrary header and payload bytes, to build invalid vectors.
func rawJWS(k *Key, header, payload string) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(header))
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig := ed25519.Sign(k.jwk.Key.(ed25519.PrivateKey), []byte(h+"."+p))
	return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(sig)
}

type invalidVector struct {
	File  string `json:"file"`
	Error string `json:"error"` // the sentinel: malformed, unknown_key, signature, expired, mismatch
	Why   string `json:"why"`
}

func invalidCases(t *testing.T, k *Key) map[string]struct {
	token string
	v     invalidVector
} {
	c := vectorClaims()
	payload, _ := json.Marshal(c)
	hdr := `{"alg":"EdDSA","kid":"` + k.ID() + `","typ":"ztlog-receipt+jwt"}`
	withClaim := func(mod func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(payload, &m)
		mod(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	valid := rawJWS(k, hdr, string(payload))
	parts := strings.Split(valid, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 1
	other := testVectorKeyN(t, 2)
	out := map[string]struct {
		token string
		v     invalidVector
	}{}
	add := func(name, token, errName, why string) {
		out[name] = struct {
			token string
			v     invalidVector
		}{token, invalidVector{File: name + ".jws", Error: errName, Why: why}}
	}
	add("bad-signature", parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig), "signature", "one bit of the signature flipped")
	add("other-key-same-kid", rawJWS(other, hdr, string(payload)), "signature", "signed by another key under this key's kid")
	add("unknown-kid", rawJWS(k, `{"alg":"EdDSA","kid":"nope","typ":"ztlog-receipt+jwt"}`, string(payload)), "unknown_key", "kid not in the JWKS")
	add("alg-none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+k.ID()+`","typ":"ztlog-receipt+jwt"}`))+"."+parts[1]+".", "malformed", "alg none")
	add("alg-hs256", rawJWS(k, `{"alg":"HS256","kid":"`+k.ID()+`","typ":"ztlog-receipt+jwt"}`, string(payload)), "malformed", "HMAC is not a receipt algorithm")
	add("wrong-typ", rawJWS(k, `{"alg":"EdDSA","kid":"`+k.ID()+`","typ":"JWT"}`, string(payload)), "malformed", "typ is not ztlog-receipt+jwt")
	add("embedded-jwk", rawJWS(k, `{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+base64.RawURLEncoding.EncodeToString(k.jwk.Key.(ed25519.PrivateKey).Public().(ed25519.PublicKey))+`"},"kid":"`+k.ID()+`","typ":"ztlog-receipt+jwt"}`, string(payload)), "malformed", "embedded key in the header")
	add("missing-claim", rawJWS(k, hdr, withClaim(func(m map[string]any) { delete(m, "leaf_hash") })), "malformed", "leaf_hash missing")
	add("unknown-claim", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["admin"] = true })), "malformed", "a claim v1 does not define")
	add("aud-array", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["aud"] = []string{c.Audience} })), "malformed", "aud must be one string")
	add("decision-deny", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["decision"] = "deny" })), "malformed", "receipts are only for allows")
	add("version-2", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["ver"] = 2 })), "malformed", "unknown version")
	add("expired", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["exp"] = vectorTime.Unix() - 1 })), "expired", "exp before the verification time")
	add("future", rawJWS(k, hdr, withClaim(func(m map[string]any) {
		m["iat"] = vectorTime.Unix() + 60
		m["exp"] = vectorTime.Unix() + 360
	})), "expired", "iat after the verification time")
	add("other-audience", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["aud"] = "spiffe://dev.ztlog.local/broker/other" })), "mismatch", "for another broker")
	add("other-issuer", rawJWS(k, hdr, withClaim(func(m map[string]any) { m["iss"] = "evil.example/log" })), "mismatch", "issued by another log")
	return out
}

func testVectorKeyN(t testing.TB, n byte) *Key {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	k, err := NewKey(ed25519.NewKeyFromSeed(seed), "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var sentinels = map[string]error{"malformed": ErrMalformed, "unknown_key": ErrUnknownKey, "signature": ErrSignature, "expired": ErrExpired, "mismatch": ErrMismatch}

func TestGoldenReceipts(t *testing.T) {
	k := testVectorKey(t)
	if *update {
		os.MkdirAll(filepath.Join(dir, "invalid"), 0o755)
		kb, _ := k.MarshalJSON()
		write(t, "test-key.jwk", append(kb, '\n'))
		jb, _ := json.MarshalIndent(NewKeyset(k).JWKS(vectorTime), "", "  ")
		write(t, "jwks.json", append(jb, '\n'))
		tok, err := k.Sign(vectorClaims())
		if err != nil {
			t.Fatal(err)
		}
		write(t, "valid.jws", []byte(tok+"\n"))
		cb, _ := json.MarshalIndent(vectorClaims(), "", "  ")
		write(t, "valid.claims.json", append(cb, '\n'))
		var vs []invalidVector
		for name, c := range invalidCases(t, k) {
			write(t, filepath.Join("invalid", name+".jws"), []byte(c.token+"\n"))
			vs = append(vs, c.v)
		}
		sortVectors(vs)
		vb, _ := json.MarshalIndent(vs, "", "  ")
		write(t, filepath.Join("invalid", "vectors.json"), append(vb, '\n'))
	}
	// The key file is the test-vector key.
	kf, err := LoadKey(filepath.Join(dir, "test-key.jwk"))
	if err != nil || kf.ID() != k.ID() {
		t.Fatalf("test-key.jwk: %v (kid %v, want %s)", err, kf, k.ID())
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(read(t, "jwks.json"), &jwks); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(read(t, "valid.jws")))
	// Signing is deterministic (Ed25519, fixed claims): the vector is what
	// this code writes today.
	again, _ := k.Sign(vectorClaims())
	if again != tok {
		t.Fatalf("valid.jws is not what Sign produces now; regenerate with -update if the format changed on purpose")
	}
	c, err := Verify(tok, &jwks, vectorWant)
	if err != nil {
		t.Fatalf("valid.jws: %v", err)
	}
	var want Claims
	json.Unmarshal(read(t, "valid.claims.json"), &want)
	if *c != want {
		t.Fatalf("claims %+v, want %+v", *c, want)
	}
	var vs []invalidVector
	if err := json.Unmarshal(read(t, filepath.Join("invalid", "vectors.json")), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 10 {
		t.Fatalf("only %d invalid vectors", len(vs))
	}
	for _, v := range vs {
		tok := strings.TrimSpace(string(read(t, filepath.Join("invalid", v.File))))
		_, err := Verify(tok, &jwks, vectorWant)
		if !errors.Is(err, sentinels[v.Error]) {
			t.Errorf("%s (%s): err = %v, want %s", v.File, v.Why, err, v.Error)
		}
	}
}

func sortVectors(vs []invalidVector) {
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if vs[j].File < vs[i].File {
				vs[i], vs[j] = vs[j], vs[i]
			}
		}
	}
}

func write(t *testing.T, name string, b []byte) {
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRotationKeepsOldKeysUntilTheirReceiptsExpire(t *testing.T) {
	ttl := 5 * time.Minute
	k1, _ := GenerateKey("")
	k2, _ := GenerateKey("ES256")
	ks := NewKeyset(k1)
	t0 := time.Unix(1_800_000_000, 0)
	c := vectorClaims()
	c.IssuedAt, c.Expiry = t0.Unix(), t0.Add(ttl).Unix()
	old, err := ks.Current().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	ks.Rotate(k2, t0.Add(ttl))
	want := vectorWant
	want.Now = t0.Add(ttl - time.Second)
	if _, err := Verify(old, ks.JWKS(want.Now), want); err != nil {
		t.Fatalf("receipt of the rotated-out key, before its expiry: %v", err)
	}
	c.ID = "second"
	fresh, err := ks.Current().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := Parse(fresh); r.KeyID != k2.ID() || r.Algorithm != "ES256" {
		t.Fatalf("after rotation signed by %s/%s", r.KeyID, r.Algorithm)
	}
	if _, err := Verify(fresh, ks.JWKS(want.Now), want); err != nil {
		t.Fatalf("ES256 receipt: %v", err)
	}
	later := ks.JWKS(t0.Add(ttl))
	if len(later.Keys) != 1 || later.Keys[0].KeyID != k2.ID() {
		t.Fatalf("after the old receipts expired the JWKS still has %d keys", len(later.Keys))
	}
	if _, err := Verify(old, later, want); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old key after retirement: %v", err)
	}
	for _, k := range later.Keys {
		if !k.IsPublic() {
			t.Fatal("JWKS publishes a private key")
		}
	}
}

func TestSignRefusesBadClaims(t *testing.T) {
	k := testVectorKey(t)
	c := vectorClaims()
	c.Audience = ""
	if _, err := k.Sign(c); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Sign without audience: %v", err)
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.jwk")
	k, _ := GenerateKey("")
	if err := WriteKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, k); err == nil {
		t.Fatal("WriteKeyFile overwrote a key")
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	k2, err := LoadKey(p)
	if err != nil || k2.ID() != k.ID() {
		t.Fatalf("LoadKey: %v", err)
	}
	pub, _ := json.Marshal(k.Public())
	if _, err := ParseKey(pub); err == nil {
		t.Fatal("a public key was accepted as a signing key")
	}
}

func FuzzParse(f *testing.F) {
	k := testVectorKey(f)
	tok, _ := k.Sign(vectorClaims())
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("")
	jwks := NewKeyset(k).JWKS(vectorTime)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if r.Claims.validate() != nil {
			t.Fatal("Parse returned claims that do not validate")
		}
		c, err := Verify(s, jwks, vectorWant)
		if err == nil && s != tok && c.ID == vectorClaims().ID {
			// A different token verifying with the same claims would need a
			// forged signature (or a re-encoding of the same signed bytes).
			h := strings.Split(s, ".")
			o := strings.Split(tok, ".")
			if h[0] != o[0] || h[1] != o[1] {
				t.Fatalf("a token other than the vector verified: %q", s)
			}
		}
	})
}
