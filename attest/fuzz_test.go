package attest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzVerify feeds envelopes to the verifier: it must never panic, and
// anything it accepts must be a statement of the asked predicate type about
// a well-formed action digest, signed by the vector agent.
func FuzzVerify(f *testing.F) {
	p := newVectorPKI(f)
	for _, name := range []string{"valid/runtime-context.dsse.json", "invalid/two-subjects.dsse.json", "invalid/payload-type.dsse.json"} {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`))
	chain := [][]byte{p.agent.Certificates[0].Raw}
	f.Fuzz(func(t *testing.T, env []byte) {
		v, err := Verify(context.Background(), env, chain, p.bundle, vectorTime, RuntimeContextType)
		if err != nil {
			return
		}
		if v.Signer != vectorAgent || v.Statement.GetPredicateType() != RuntimeContextType || !digestPattern.MatchString(v.Subject) {
			t.Fatalf("accepted %s about %s of type %s", v.Signer, v.Subject, v.Statement.GetPredicateType())
		}
	})
}

// FuzzParsePredicates: the predicate parsers never panic, and what they
// accept validates.
func FuzzParsePredicates(f *testing.F) {
	for _, name := range []string{"runtime-context", "broker-result", "broker-result-error"} {
		b, err := os.ReadFile(filepath.Join(vectorDir, "valid", name+".predicate.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseRuntimeContext(b); err == nil {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted an invalid runtime context: %v", err)
			}
		}
		if p, err := ParseBrokerResult(b); err == nil {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted an invalid broker result: %v", err)
			}
		}
	})
}

// digestPattern is the digest form, as a regular expression: the oracle
// for isDigest.
var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// FuzzIsDigest: isDigest agrees with the regular expression.
func FuzzIsDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("0a", 32), "sha256:" + strings.Repeat("0A", 32), "sha256:" + strings.Repeat("a", 63),
		"sha512:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("g", 64), "sha256:" + strings.Repeat("f", 64) + "\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isDigest(s), digestPattern.MatchString(s); got != want {
			t.Fatalf("isDigest(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
