package bundle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

var update = flag.Bool("update", false, "rewrite the vectors in testdata/bundles")

const vectorDir = "../../testdata/bundles"

// TEST VECTOR KEYS: the log and witness keys derive from public seed
// strings; the receipt key is testdata/receipts/test-key.jwk, a published
// test-vector key. None of them may sign anything real.
func seedKey(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("ztlog test vector key: " + label))
	return ed25519.NewKeyFromSeed(s[:])
}

func keyID(name string, typeAndKey []byte) uint32 {
	h := sha256.Sum256(append([]byte(name+"\n"), typeAndKey...))
	return binary.BigEndian.Uint32(h[:4])
}

const (
	origin      = "example.com/bundle-vectors"
	witnessName = "witness.example/bundle-w1"
	cosignTime  = 1795255260 // 2026-11-21T10:01:00Z, after the entries
)

func vkey(name string, typ byte, pub ed25519.PublicKey) string {
	k := append([]byte{typ}, pub...)
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, k), base64.StdEncoding.EncodeToString(k))
}

func logSigner(t testing.TB) note.Signer {
	k := seedKey("bundle log")
	pk := append([]byte{1}, k.Public().(ed25519.PublicKey)...)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, keyID(origin, pk), base64.StdEncoding.EncodeToString(append([]byte{1}, k.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cosigner is a cosignature/v1 signer with a fixed timestamp (so that the
// vectors are deterministic).
type cosigner struct{ key ed25519.PrivateKey }

func (c cosigner) Name() string { return witnessName }
func (c cosigner) KeyHash() uint32 {
	return keyID(witnessName, append([]byte{4}, c.key.Public().(ed25519.PublicKey)...))
}
func (c cosigner) Sign(msg []byte) ([]byte, error) {
	sig := binary.BigEndian.AppendUint64(nil, cosignTime)
	return append(sig, ed25519.Sign(c.key, []byte(fmt.Sprintf("cosignature/v1\ntime %d\n%s", cosignTime, msg)))...), nil
}

func trustPolicy() string {
	return "log " + vkey(origin, 1, seedKey("bundle log").Public().(ed25519.PublicKey)) + "\n" +
		"witness w1 " + vkey(witnessName, 4, seedKey("bundle witness").Public().(ed25519.PublicKey)) + "\n" +
		"quorum w1\n"
}

func receiptKey(t testing.TB) *receipt.Key {
	b, err := os.ReadFile("../../testdata/receipts/test-key.jwk")
	if err != nil {
		t.Fatal(err)
	}
	k, err := receipt.ParseKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type vectorLog struct {
	pki     *testPKI
	dir     string
	allow   uint64
	deny    uint64
	result  uint64
	receipt string
	jwks    *jose.JSONWebKeySet
}

// buildVectorLog writes a small log: a policy, an agent, an allow with its
// receipt, a deny and the allow's result; its checkpoint is signed by the
// log and cosigned by the witness.
func buildVectorLog(t testing.TB) *vectorLog {
	rk := receiptKey(t)
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	agent, broker := audittest.Agent(1), audittest.Broker
	var entries [][]byte
	add := func(e entry.Entry) uint64 {
		entries = append(entries, audittest.MustMarshal(e))
		return uint64(len(entries) - 1)
	}
	add(audittest.Register(t0, agent))
	allow := audittest.Allow(t0.Add(time.Second), 1, agent)
	allow.Receipt = &entry.ReceiptRef{ID: "rcpt-vector-1", KeyID: rk.ID(), Audience: broker, Expires: entry.FormatTime(t0.Add(time.Second + 5*time.Minute))}
	pki := vectorPKI(t)
	allow.Attestation = pki.runtimeContext(t, allow, t0)
	v := &vectorLog{pki: pki}
	v.allow = add(allow)
	v.deny = add(audittest.Deny(t0.Add(2*time.Second), 2, agent))
	res := audittest.ResultFor(t0.Add(3*time.Second), v.allow, entries[v.allow], allow)
	res.Statement = pki.brokerResult(t, res, t0.Add(2*time.Second))
	v.result = add(res)
	tok, err := rk.Sign(receipt.Claims{
		Issuer: origin, Subject: agent, Audience: broker, IssuedAt: t0.Add(time.Second).Unix(), Expiry: t0.Add(time.Second + 5*time.Minute).Unix(),
		ID: "rcpt-vector-1", ActionDigest: allow.ActionDigest, Decision: "allow", LogIndex: v.allow,
		LeafHash: base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(entries[v.allow])), PolicyHash: allow.Policy.Hash, CorrelationID: allow.CorrelationID,
	})
	if err != nil {
		t.Fatal(err)
	}
	v.receipt = tok
	v.jwks = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rk.Public()}}
	v.dir = t.TempDir()
	cp, err := audittest.WriteLog(v.dir, logSigner(t), audittest.Of(entries))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.SplitN(string(cp.Note), "\n\n", 2)[0] + "\n"
	signed, err := note.Sign(&note.Note{Text: text}, logSigner(t), cosigner{seedKey("bundle witness")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, "checkpoint"), signed, 0o644); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustPolicy(t testing.TB, text string) *trustpolicy.Policy {
	p, err := trustpolicy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type vector struct {
	File        string   `json:"file"`
	Valid       bool     `json:"valid"`
	Checks      []string `json:"checks"` // name=verdict, in order
	NotVerified []string `json:"not_verified,omitempty"`
}

func summary(r *Report) []string {
	var s []string
	for _, c := range r.Checks {
		s = append(s, c.Name+"="+string(c.Verdict))
	}
	return s
}

func vectorFile(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	p := filepath.Join(vectorDir, name)
	if *update {
		os.MkdirAll(vectorDir, 0o755)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./verifier/bundle -update)", err)
	}
	return b
}

func TestVectors(t *testing.T) {
	v := buildVectorLog(t)
	pol := mustPolicy(t, string(vectorFile(t, "trust.policy", []byte(trustPolicy()))))
	src := client.FileFetcher{Root: v.dir}
	ctx := context.Background()
	made := map[string]*Bundle{}
	var err error
	pinned, err := attestation.ParseRoots(vectorFile(t, "spiffe-bundle.pem", v.pki.pem()), "")
	if err != nil {
		t.Fatal(err)
	}
	roots := v.pki.roots()
	if made["allow-result-receipt.bundle"], err = Build(ctx, src, pol, v.allow, BuildOptions{FindResult: true, Roots: roots, Receipt: v.receipt, JWKS: v.jwks}); err != nil {
		t.Fatal(err)
	}
	if made["allow-result-receipt.bundle"].Result == nil || made["allow-result-receipt.bundle"].Result.Index != v.result {
		t.Fatal("Build did not find the allow's result")
	}
	if made["allow.bundle"], err = Build(ctx, src, pol, v.allow, BuildOptions{Roots: roots}); err != nil {
		t.Fatal(err)
	}
	if made["deny.bundle"], err = Build(ctx, src, pol, v.deny, BuildOptions{FindResult: true, Roots: roots}); err != nil {
		t.Fatal(err)
	}
	var manifest []vector
	for _, name := range []string{"allow-result-receipt.bundle", "allow.bundle", "deny.bundle"} {
		enc, err := Marshal(made[name])
		if err != nil {
			t.Fatal(err)
		}
		raw := vectorFile(t, name, enc)
		if !bytes.Equal(raw, enc) {
			t.Errorf("%s: Build no longer makes the vector (keys or entries changed?); run -update and review", name)
		}
		b, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := Verify(b, pol, Options{Now: time.Unix(cosignTime+60, 0), Roots: pinned})
		manifest = append(manifest, vector{File: name, Valid: r.Valid, Checks: summary(r), NotVerified: r.NotVerified})
		if !r.Valid {
			t.Errorf("%s: %+v", name, r.FirstFailure)
		}
	}
	mj, _ := json.MarshalIndent(manifest, "", "  ")
	var recorded []vector
	if err := json.Unmarshal(vectorFile(t, "vectors.json", append(mj, '\n')), &recorded); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(recorded) != fmt.Sprint(manifest) {
		t.Errorf("vectors.json says\n%v\nverifying gives\n%v", recorded, manifest)
	}
	full := manifest[0]
	if want := "checkpoint=pass decision.inclusion=pass decision.entry=pass spiffe.bundle=pass decision.attestation=pass decision.attestation.digest=pass receipt.key=pass receipt.signature=pass receipt.binding=pass result.inclusion=pass result.entry=pass result.link=pass result.statement=pass result.statement.digest=pass"; strings.Join(full.Checks, " ") != want {
		t.Errorf("full bundle checks:\n%s\nwant\n%s", strings.Join(full.Checks, " "), want)
	}
}

// Flipping any bit of any byte of a bundle makes it fail: it no longer
// parses, or a check fails.
func TestEveryByteMatters(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorDir, "allow-result-receipt.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, trustPolicy())
	pinned := vectorPKI(t).roots()
	failed := map[string]int{}
	for i := range raw {
		for _, bit := range []byte{0x01, 0x10} {
			c := append([]byte(nil), raw...)
			c[i] ^= bit
			b, err := Parse(c)
			if err != nil {
				failed["parse"]++
				continue
			}
			r := Verify(b, pol, Options{Roots: pinned})
			if r.Valid {
				t.Fatalf("byte %d ^ %#x still verifies:\n%s", i, bit, c)
			}
			failed[r.FirstFailure.Name]++
		}
	}
	t.Logf("failures by first failing check: %v", failed)
	for _, name := range []string{"parse", CheckCheckpoint, CheckDecision, CheckReceipt, CheckResult, CheckSPIFFE} {
		if failed[name] == 0 {
			t.Errorf("no flip failed at %s", name)
		}
	}
}

// Each part altered on its own, re-encoded so that it parses: the check
// that fails is named.
func TestTamperedParts(t *testing.T) {
	v := buildVectorLog(t)
	pol := mustPolicy(t, trustPolicy())
	src := client.FileFetcher{Root: v.dir}
	good, err := Build(context.Background(), src, pol, v.allow, BuildOptions{Result: &v.result, Receipt: v.receipt, JWKS: v.jwks})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Build(context.Background(), src, pol, v.deny, BuildOptions{})
	clone := func() *Bundle {
		enc, _ := Marshal(good)
		b, _ := Parse(enc)
		return b
	}
	otherKey, _ := receipt.GenerateKey("EdDSA")
	otherKeyJSON, _ := otherKey.Public().MarshalJSON()
	for _, c := range []struct {
		name   string
		edit   func(b *Bundle)
		first  string
		phrase string
		opts   Options
	}{
		{"decision entry swapped", func(b *Bundle) { b.Decision.Leaf = other.Decision.Leaf }, CheckDecision, "inclusion proof does not verify", Options{}},
		{"decision index", func(b *Bundle) { b.Decision.Index++ }, CheckDecision, "its tlog-proof is for index", Options{}},
		{"decision proof of another entry", func(b *Bundle) { b.Decision.Proof = other.Decision.Proof }, CheckDecision, "its tlog-proof is for index", Options{}},
		{"origin", func(b *Bundle) { b.Origin = "example.com/other" }, CheckCheckpoint, "the bundle says origin", Options{}},
		{"result proven into another checkpoint", func(b *Bundle) { b.Result.Proof = strings.Replace(b.Result.Proof, "\n\n", "\n\nx", 1) }, CheckCheckpoint, "different checkpoints", Options{}},
		{"result is the deny", func(b *Bundle) { b.Result = &other.Decision }, CheckResultEntry, "not a result", Options{}},
		{"receipt from another bundle", func(b *Bundle) { b.Receipt = strings.Replace(b.Receipt, ".", ".e30", 1) }, CheckReceipt, "", Options{}},
		{"receipt key not committed", func(b *Bundle) { b.ReceiptKey = otherKeyJSON }, CheckReceiptKey, "the decision entry commits to key", Options{}},
		{"receipt without key", func(b *Bundle) { b.ReceiptKey = nil }, CheckReceiptKey, "not a JWK", Options{}},
		{"receipt on a deny", func(b *Bundle) { b.Decision = other.Decision; b.Result = nil }, CheckReceipt, "the decision is a deny", Options{}},
		{"policy hash not accepted", func(b *Bundle) {}, CheckPolicyHash, "not one you accept", Options{PolicyHashes: []string{entry.Digest([]byte("another policy"))}}},
		{"another trust policy", func(b *Bundle) {}, CheckCheckpoint, "not signed by a log in the policy", Options{}},
		{"decision made after the checkpoint was cosigned", func(b *Bundle) {}, CheckTimes, "before the decision it covers was made", Options{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := clone()
			c.edit(b)
			p := pol
			if c.name == "another trust policy" {
				_, vk, _ := note.GenerateKey(nil, origin)
				p = mustPolicy(t, "log "+vk+"\nquorum none\n")
			}
			if c.name == "decision made after the checkpoint was cosigned" {
				b = lateCosigned(t, b)
			}
			r := Verify(b, p, c.opts)
			if r.Valid || r.FirstFailure.Name != c.first || !strings.Contains(r.FirstFailure.Detail, c.phrase) {
				t.Fatalf("first failure %+v, want %s containing %q", r.FirstFailure, c.first, c.phrase)
			}
		})
	}
	// The accepted policy hash passes.
	d, _ := entry.Parse(good.Decision.Leaf)
	if r := Verify(clone(), pol, Options{PolicyHashes: []string{d.(*entry.Decision).Policy.Hash}}); !r.Valid {
		t.Fatalf("%+v", r.FirstFailure)
	}
}

func TestBuildRefuses(t *testing.T) {
	v := buildVectorLog(t)
	pol := mustPolicy(t, trustPolicy())
	src := client.FileFetcher{Root: v.dir}
	if _, err := Build(context.Background(), src, pol, 99, BuildOptions{}); err == nil {
		t.Fatal("built a bundle for an entry beyond the tree")
	}
	_, vk, _ := note.GenerateKey(nil, origin)
	if _, err := Build(context.Background(), src, mustPolicy(t, "log "+vk+"\nquorum none\n"), v.allow, BuildOptions{}); err == nil {
		t.Fatal("built a bundle on a checkpoint the policy does not accept")
	}
	if _, err := Build(context.Background(), src, pol, v.allow, BuildOptions{Receipt: v.receipt}); err == nil {
		t.Fatal("built a receipt bundle without the JWKS")
	}
}

// FuzzParseVerify: arbitrary bytes never panic Parse or Verify, and never
// verify unless they are one of the vectors.
func FuzzParseVerify(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.bundle"))
	valid := map[string]bool{}
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
		valid[string(b)] = true
	}
	pol := mustPolicy(f, trustPolicy())
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := Parse(raw)
		if err != nil {
			return
		}
		if r := Verify(b, pol, Options{}); r.Valid && !valid[string(raw)] {
			enc, _ := Marshal(b)
			if !bytes.Equal(enc, raw) {
				t.Fatal("a non-canonical bundle parsed")
			}
			// A valid bundle other than the vectors: it can only be a
			// vector with parts removed (receipt, result), which is fine.
			if b.Receipt == "" && b.Result == nil || b.Result == nil || b.Receipt == "" {
				return
			}
			t.Fatalf("a bundle that is not a vector verifies:\n%s", raw)
		}
	})
}

// lateCosigned re-cosigns the bundle's checkpoint at a time before its
// entries were made.
func lateCosigned(t *testing.T, b *Bundle) *Bundle {
	p, err := tlogproof.Parse([]byte(b.Decision.Proof))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.SplitN(string(p.Checkpoint), "\n\n", 2)[0] + "\n"
	early := cosigner{seedKey("bundle witness")}
	signed, err := note.Sign(&note.Note{Text: text}, logSigner(t), earlyCosigner{early})
	if err != nil {
		t.Fatal(err)
	}
	p.Checkpoint = signed
	b.Decision.Proof = string(tlogproof.Format(p))
	b.Result = nil
	return b
}

type earlyCosigner struct{ cosigner }

func (c earlyCosigner) Sign(msg []byte) ([]byte, error) {
	const early = cosignTime - 86400
	sig := binary.BigEndian.AppendUint64(nil, early)
	return append(sig, ed25519.Sign(c.key, []byte(fmt.Sprintf("cosignature/v1\ntime %d\n%s", early, msg)))...), nil
}

// Who trusts the SPIFFE roots: pinned roots make the statements proven;
// without them they are "not verified"; other pinned roots fail.
func TestSPIFFERoots(t *testing.T) {
	v := buildVectorLog(t)
	pol := mustPolicy(t, trustPolicy())
	src := client.FileFetcher{Root: v.dir}
	good, err := Build(context.Background(), src, pol, v.allow, BuildOptions{FindResult: true, Roots: v.pki.roots()})
	if err != nil {
		t.Fatal(err)
	}
	r := Verify(good, pol, Options{})
	if !r.Valid || strings.Join(r.NotVerified, " ") != "spiffe.bundle decision.attestation result.statement" || r.SPIFFE.Pinned {
		t.Fatalf("unpinned: valid %v, not verified %v", r.Valid, r.NotVerified)
	}
	if r.Attestation == nil || r.Attestation.Signer != audittest.Agent(1) || r.Statement == nil || r.Statement.Signer != audittest.Broker {
		t.Fatalf("signers not reported: %+v %+v", r.Attestation, r.Statement)
	}
	other := vectorPKI(t)
	other.ca.Raw = append([]byte(nil), other.ca.Raw...)
	other.ca.Raw[len(other.ca.Raw)-1] ^= 1 // another root of the same trust domain
	r = Verify(good, pol, Options{Roots: other.roots()})
	if r.Valid || r.FirstFailure.Name != CheckSPIFFE {
		t.Fatalf("foreign pinned roots: %+v", r.FirstFailure)
	}
	bare := *good
	bare.SPIFFE = nil
	r = Verify(&bare, pol, Options{Roots: v.pki.roots()})
	if !r.Valid || len(r.NotVerified) != 0 {
		t.Fatalf("roots only pinned: valid %v, not verified %v, %+v", r.Valid, r.NotVerified, r.FirstFailure)
	}
	r = Verify(&bare, pol, Options{})
	if !r.Valid || strings.Join(r.NotVerified, " ") != "decision.attestation result.statement" {
		t.Fatalf("no roots at all: valid %v, not verified %v", r.Valid, r.NotVerified)
	}
	if _, err := Build(context.Background(), src, pol, v.allow, BuildOptions{Roots: &attestation.Roots{Domains: []attestation.Domain{{TrustDomain: "other.example", Authorities: [][]byte{v.pki.ca.Raw}}}}}); err == nil {
		t.Fatal("built a bundle with roots for the wrong trust domain")
	}
	v1 := bytes.Replace(mustMarshal(t, &bare), []byte(Format), []byte(FormatV1), 1)
	if _, err := Parse(v1); err == nil || !strings.Contains(err.Error(), "version 1 bundles carry no SPIFFE trust bundle") {
		t.Fatalf("v1: %v", err)
	}
}

func mustMarshal(t *testing.T, b *Bundle) []byte {
	enc, err := Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}
