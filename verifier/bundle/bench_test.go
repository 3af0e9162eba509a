package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkVerifyBundle verifies the full vector bundle with its SPIFFE
// roots pinned (checkpoint with a log signature and a cosignature, two
// inclusion proofs, two entries parsed, a receipt signature, the agent's
// attestation and the broker's statement with their SVID chains: seven
// Ed25519 verifications, the vectors' SVIDs being Ed25519) and reports
// bundles/s beside this machine's raw Ed25519 verify rate measured in the
// same run (one core).
func BenchmarkVerifyBundle(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(vectorDir, "allow-result-receipt.bundle"))
	if err != nil {
		b.Fatal(err)
	}
	pol := mustPolicy(b, trustPolicy())
	roots := vectorPKI(b).roots()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := raw[:600]
	sig := ed25519.Sign(priv, msg)
	const n = 5000
	start := time.Now()
	for range n {
		ed25519.Verify(pub, msg, sig)
	}
	verifyRate := n / time.Since(start).Seconds()
	b.ResetTimer()
	start = time.Now()
	count := 0
	for range b.N {
		for range 500 {
			bd, err := Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			if r := Verify(bd, pol, Options{Roots: roots}); !r.Valid || len(r.NotVerified) > 0 {
				b.Fatal(r.FirstFailure, r.NotVerified)
			}
			count++
		}
	}
	rate := float64(count) / time.Since(start).Seconds()
	b.ReportMetric(rate, "bundles/s")
	b.ReportMetric(verifyRate, "ed25519-verify/s")
	b.ReportMetric(rate*7/verifyRate, "ratio-signature-bound")
	b.ReportMetric(0, "ns/op")
}
