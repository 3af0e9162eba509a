package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/internal/devca"
)

// BenchmarkVerifyRuntimeContext measures the decision path's attestation
// check (envelope, X.509-SVID chain, DSSE signature, statement, predicate)
// beside the bare ECDSA P-256 verification it contains, in the same run.
func BenchmarkVerifyRuntimeContext(b *testing.B) {
	ca, err := devca.New(vectorTD)
	if err != nil {
		b.Fatal(err)
	}
	svid, _ := ca.IssueX509SVID(vectorAgent, devca.SVIDOptions{})
	now := time.Now()
	p := vectorRuntimeContext()
	p.IssuedAt, p.ExpiresAt = FormatTime(now), FormatTime(now.Add(time.Minute))
	s, err := SignRuntimeContext(context.Background(), svid, vectorAction, p)
	if err != nil {
		b.Fatal(err)
	}
	bundle := ca.X509Bundle()
	want := Expect{Now: now, Signer: vectorAgent, ActionDigest: vectorAction}
	const n = 2000
	for b.Loop() {
		start := time.Now()
		for range n {
			if _, _, err := VerifyRuntimeContext(context.Background(), s.Envelope, s.Chain, bundle, want); err != nil {
				b.Fatal(err)
			}
		}
		full := time.Since(start)
		key := svid.PrivateKey.(*ecdsa.PrivateKey)
		digest := sha256.Sum256(s.Envelope)
		sig, _ := ecdsa.SignASN1(nil, key, digest[:])
		start = time.Now()
		for range n {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("bare verify failed")
			}
		}
		bare := time.Since(start)
		b.ReportMetric(float64(n)/full.Seconds(), "verifies/s")
		b.ReportMetric(float64(n)/bare.Seconds(), "bare-ecdsa-verifies/s")
		b.ReportMetric(full.Seconds()/bare.Seconds(), "x-bare")
	}
}

// BenchmarkSignBrokerResult measures signing a broker result (statement,
// protojson and JCS payload, DSSE over an ECDSA P-256 SVID key) beside
// the bare ECDSA P-256 signature it contains, in the same run.
func BenchmarkSignBrokerResult(b *testing.B) {
	ca, err := devca.New(vectorTD)
	if err != nil {
		b.Fatal(err)
	}
	svid, _ := ca.IssueX509SVID(vectorAgent, devca.SVIDOptions{})
	p := vectorBrokerResult()
	key := svid.PrivateKey.(*ecdsa.PrivateKey)
	const n = 1000
	for b.Loop() {
		start := time.Now()
		for range n {
			if _, err := SignBrokerResult(context.Background(), svid, vectorAction, p); err != nil {
				b.Fatal(err)
			}
		}
		full := time.Since(start)
		digest := sha256.Sum256([]byte(vectorAction))
		start = time.Now()
		for range n {
			if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
		bare := time.Since(start)
		b.ReportMetric(float64(full.Microseconds())/n, "µs/sign")
		b.ReportMetric(float64(bare.Microseconds())/n, "bare-ecdsa-µs/sign")
		b.ReportMetric(full.Seconds()/bare.Seconds(), "x-bare")
	}
}
