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

// BenchmarkChainCacheVerify measures Verify beside ChainCache.Verify on a
// remembered chain (the authorities' digest and validity checked, the
// DSSE signature and statement verified) and the bare ECDSA P-256
// verification both contain, in the same run.
func BenchmarkChainCacheVerify(b *testing.B) {
	ca, err := devca.New(vectorTD)
	if err != nil {
		b.Fatal(err)
	}
	svid, _ := ca.IssueX509SVID(vectorAgent, devca.SVIDOptions{})
	s, err := SignRuntimeContext(context.Background(), svid, vectorAction, vectorRuntimeContext())
	if err != nil {
		b.Fatal(err)
	}
	bundle := ca.X509Bundle()
	now := time.Now()
	cache := NewChainCache(0)
	key := svid.PrivateKey.(*ecdsa.PrivateKey)
	digest := sha256.Sum256(s.Envelope)
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	const n = 2000
	for b.Loop() {
		timed := func(f func() error) time.Duration {
			start := time.Now()
			for range n {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start) / n
		}
		full := timed(func() error {
			_, err := Verify(context.Background(), s.Envelope, s.Chain, bundle, now, RuntimeContextType)
			return err
		})
		cached := timed(func() error {
			_, err := cache.Verify(context.Background(), s.Envelope, s.Chain, bundle, now, RuntimeContextType)
			return err
		})
		bare := timed(func() error {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				return ErrSignature
			}
			return nil
		})
		b.ReportMetric(float64(full.Nanoseconds())/1e3, "verify-µs")
		b.ReportMetric(float64(cached.Nanoseconds())/1e3, "cached-verify-µs")
		b.ReportMetric(float64(bare.Nanoseconds())/1e3, "bare-ecdsa-µs")
		b.ReportMetric(full.Seconds()/bare.Seconds(), "verify-x-bare")
		b.ReportMetric(cached.Seconds()/bare.Seconds(), "cached-x-bare")
	}
}
