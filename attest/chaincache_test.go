package attest

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/internal/devca"
)

// switchable is a bundle source whose bundle can be replaced while in use,
// as a Workload API source's is when the trust domain's CA rotates.
type switchable struct {
	mu sync.Mutex
	b  *x509bundle.Bundle
}

func (s *switchable) set(b *x509bundle.Bundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
}

func (s *switchable) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil || s.b.TrustDomain() != td {
		return nil, fmt.Errorf("no bundle for %s", td)
	}
	return s.b, nil
}

// cacheCase is a CA, an SVID it issued and a statement signed with it.
type cacheCase struct {
	ca     *devca.CA
	svid   *x509svid.SVID
	signed *Signed
}

func newCacheCase(t testing.TB, ca *devca.CA, o devca.SVIDOptions) *cacheCase {
	t.Helper()
	if ca == nil {
		var err error
		if ca, err = devca.New(vectorTD); err != nil {
			t.Fatal(err)
		}
	}
	svid, err := ca.IssueX509SVID(vectorAgent, o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := SignRuntimeContext(context.Background(), svid, vectorAction, vectorRuntimeContext())
	if err != nil {
		t.Fatal(err)
	}
	return &cacheCase{ca: ca, svid: svid, signed: s}
}

func (k *cacheCase) verify(c *ChainCache, bundles x509bundle.Source, now time.Time) (*Verified, error) {
	return c.Verify(context.Background(), k.signed.Envelope, k.signed.Chain, bundles, now, RuntimeContextType)
}

// TestChainCacheHitIsAFullVerification: the second verification of a
// chain is a hit (the leaf certificate is the one parsed the first time)
// and gives what Verify gives.
func TestChainCacheHitIsAFullVerification(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	bundle := k.ca.X509Bundle()
	now := time.Now()
	c := NewChainCache(0)
	first, err := k.verify(c, bundle, now)
	if err != nil {
		t.Fatal(err)
	}
	hit, err := k.verify(c, bundle, now)
	if err != nil {
		t.Fatal(err)
	}
	full, err := Verify(context.Background(), k.signed.Envelope, k.signed.Chain, bundle, now, RuntimeContextType)
	if err != nil {
		t.Fatal(err)
	}
	if hit.Chain[0] != first.Chain[0] {
		t.Error("the second verification parsed the leaf again: not a cache hit")
	}
	if hit.Signer != full.Signer {
		t.Errorf("signer %s, Verify says %s", hit.Signer, full.Signer)
	}
	if !bytes.Equal(hit.Chain[0].Raw, full.Chain[0].Raw) {
		t.Error("the hit's leaf is not the chain's leaf")
	}
	if got, want := len(hit.Chain), len(full.Chain); got != want {
		t.Errorf("verified path of %d certificates, Verify's has %d", got, want)
	}
	if !bytes.Equal(hit.Chain[len(hit.Chain)-1].Raw, k.ca.Certificate().Raw) {
		t.Error("the hit's path does not end at the CA")
	}
	if hit.Subject != full.Subject {
		t.Errorf("subject %s, Verify says %s", hit.Subject, full.Subject)
	}
	if !bytes.Equal(hit.Payload, full.Payload) {
		t.Error("the hit's payload differs from Verify's")
	}
	if got := c.Len(); got != 1 {
		t.Errorf("the cache holds %d chains, want 1", got)
	}
}

// TestChainCacheHitStillChecksTheSignature: a remembered chain does not
// vouch for an envelope its key did not sign.
func TestChainCacheHitStillChecksTheSignature(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	other := newCacheCase(t, k.ca, devca.SVIDOptions{})
	c := NewChainCache(0)
	now := time.Now()
	if _, err := k.verify(c, k.ca.X509Bundle(), now); err != nil {
		t.Fatal(err)
	}
	_, err := c.Verify(context.Background(), other.signed.Envelope, k.signed.Chain, k.ca.X509Bundle(), now, RuntimeContextType)
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("another key's envelope with a remembered chain: %v, want ErrSignature", err)
	}
}

// TestChainCacheRotation: a chain remembered under CA 1 is refused once
// the source's bundle is CA 2's, and refused after CA 1 is removed from
// the very bundle object it was verified with.
func TestChainCacheRotation(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	ca2, err := devca.New(vectorTD)
	if err != nil {
		t.Fatal(err)
	}
	src := &switchable{b: k.ca.X509Bundle()}
	c := NewChainCache(0)
	now := time.Now()
	if _, err := k.verify(c, src, now); err != nil {
		t.Fatal(err)
	}
	if got := c.Len(); got != 1 {
		t.Fatalf("the cache holds %d chains after a verification, want 1", got)
	}

	src.set(ca2.X509Bundle())
	if _, err := k.verify(c, src, now); !errors.Is(err, ErrChain) {
		t.Errorf("after rotation to CA 2: %v, want ErrChain", err)
	}
	if got := c.Len(); got != 0 {
		t.Errorf("the refused chain is still held (%d chains)", got)
	}

	// Both CAs (a rotation's overlap): a miss, verified again in full.
	both := x509bundle.FromX509Authorities(vectorTD, []*x509.Certificate{ca2.Certificate(), k.ca.Certificate()})
	src.set(both)
	first, err := k.verify(c, src, now)
	if err != nil {
		t.Fatalf("with both CAs: %v", err)
	}
	// Removed in place from the same bundle object.
	both.RemoveX509Authority(k.ca.Certificate())
	if _, err := k.verify(c, src, now); !errors.Is(err, ErrChain) {
		t.Errorf("after CA 1 was removed from the bundle in place: %v, want ErrChain", err)
	}
	both.AddX509Authority(k.ca.Certificate())
	again, err := k.verify(c, src, now)
	if err != nil {
		t.Fatalf("with CA 1 added back: %v", err)
	}
	if again.Chain[0] == first.Chain[0] {
		t.Error("a chain refused in between was still remembered")
	}
}

// TestChainCacheNoBundle: without a bundle for the trust domain the chain
// is refused, remembered or not.
func TestChainCacheNoBundle(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	src := &switchable{b: k.ca.X509Bundle()}
	c := NewChainCache(0)
	now := time.Now()
	if _, err := k.verify(c, src, now); err != nil {
		t.Fatal(err)
	}
	src.set(nil)
	if _, err := k.verify(c, src, now); !errors.Is(err, ErrChain) {
		t.Errorf("with no bundle: %v, want ErrChain", err)
	}
}

// TestChainCacheValidityWindow: a remembered chain is refused after its
// leaf's NotAfter and before its NotBefore, and used on both bounds.
func TestChainCacheValidityWindow(t *testing.T) {
	// Inside the CA's validity (from a minute before it was made).
	notBefore := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	k := newCacheCase(t, nil, devca.SVIDOptions{NotBefore: notBefore, TTL: time.Hour})
	leaf := k.svid.Certificates[0]
	bundle := k.ca.X509Bundle()
	c := NewChainCache(0)
	first, err := k.verify(c, bundle, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	atEnd, err := k.verify(c, bundle, leaf.NotAfter)
	if err != nil {
		t.Fatalf("at NotAfter: %v", err)
	}
	if atEnd.Chain[0] != first.Chain[0] {
		t.Error("at NotAfter: not a cache hit")
	}
	atStart, err := k.verify(c, bundle, leaf.NotBefore)
	if err != nil {
		t.Fatalf("at NotBefore: %v", err)
	}
	if atStart.Chain[0] != first.Chain[0] {
		t.Error("at NotBefore: not a cache hit")
	}
	if _, err := k.verify(c, bundle, leaf.NotAfter.Add(time.Nanosecond)); !errors.Is(err, ErrChain) {
		t.Errorf("after NotAfter: %v, want ErrChain", err)
	}
	if _, err := k.verify(c, bundle, time.Now()); err != nil {
		t.Fatalf("verified again at now: %v", err)
	}
	if _, err := k.verify(c, bundle, leaf.NotBefore.Add(-time.Nanosecond)); !errors.Is(err, ErrChain) {
		t.Errorf("before NotBefore: %v, want ErrChain", err)
	}
}

// TestChainCacheWindowIsTheIntersection: the window kept is the
// intersection of the presented certificates' and the path's: a leaf
// valid longer than its CA is refused once the CA has expired.
func TestChainCacheWindowIsTheIntersection(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{TTL: 20 * 365 * 24 * time.Hour})
	ca := k.ca.Certificate()
	bundle := k.ca.X509Bundle()
	c := NewChainCache(0)
	if _, err := k.verify(c, bundle, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.verify(c, bundle, ca.NotAfter.Add(time.Second)); !errors.Is(err, ErrChain) {
		t.Errorf("after the CA's NotAfter: %v, want ErrChain", err)
	}
}

// TestChainCacheOneByteDiffers: a chain one byte away from a remembered
// one is verified in full (and, its certificate's signature broken,
// refused).
func TestChainCacheOneByteDiffers(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	bundle := k.ca.X509Bundle()
	c := NewChainCache(0)
	now := time.Now()
	if _, err := k.verify(c, bundle, now); err != nil {
		t.Fatal(err)
	}
	leaf := bytes.Clone(k.signed.Chain[0])
	leaf[len(leaf)-1] ^= 1 // inside the certificate's signature
	_, err := c.Verify(context.Background(), k.signed.Envelope, [][]byte{leaf}, bundle, now, RuntimeContextType)
	if !errors.Is(err, ErrChain) {
		t.Errorf("a chain one byte off: %v, want ErrChain", err)
	}
	if got := c.Len(); got != 1 {
		t.Errorf("the cache holds %d chains, want the 1 that verified", got)
	}
}

// TestChainCacheBound: the cache never holds more chains than its bound.
func TestChainCacheBound(t *testing.T) {
	ca, err := devca.New(vectorTD)
	if err != nil {
		t.Fatal(err)
	}
	c := NewChainCache(3)
	now := time.Now()
	for i := range 5 {
		k := newCacheCase(t, ca, devca.SVIDOptions{})
		if _, err := k.verify(c, ca.X509Bundle(), now); err != nil {
			t.Fatalf("chain %d: %v", i, err)
		}
		if got := c.Len(); got > 3 {
			t.Fatalf("after %d chains the cache holds %d, bound 3", i+1, got)
		}
	}
	if got := c.Len(); got != 3 {
		t.Errorf("the cache holds %d chains, want 3", got)
	}
}

// TestChainCacheErrorsAreVerifys: the checks before the chain fail as
// Verify's do.
func TestChainCacheErrorsAreVerifys(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	c := NewChainCache(0)
	now := time.Now()
	if _, err := c.Verify(context.Background(), k.signed.Envelope, nil, k.ca.X509Bundle(), now, RuntimeContextType); !errors.Is(err, ErrMalformed) {
		t.Errorf("no chain: %v, want ErrMalformed", err)
	}
	if _, err := c.Verify(context.Background(), []byte("{}"), k.signed.Chain, k.ca.X509Bundle(), now, RuntimeContextType); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty envelope: %v, want ErrMalformed", err)
	}
	if _, err := c.Verify(context.Background(), k.signed.Envelope, k.signed.Chain, nil, now, RuntimeContextType); err == nil {
		t.Error("no bundle source: verified")
	}
	if _, err := c.Verify(context.Background(), k.signed.Envelope, k.signed.Chain, k.ca.X509Bundle(), now, BrokerResultType); !errors.Is(err, ErrMalformed) {
		t.Errorf("another predicate type: %v, want ErrMalformed", err)
	}
}

// TestNilChainCacheIsVerify: a nil cache verifies and remembers nothing.
func TestNilChainCacheIsVerify(t *testing.T) {
	k := newCacheCase(t, nil, devca.SVIDOptions{})
	var c *ChainCache
	v, err := k.verify(c, k.ca.X509Bundle(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v.Signer != vectorAgent {
		t.Errorf("signer %s, want %s", v.Signer, vectorAgent)
	}
	if got := c.Len(); got != 0 {
		t.Errorf("a nil cache holds %d chains", got)
	}
}

// TestChainCacheConcurrent: many goroutines verify several chains through
// a small cache while the bundle switches between two that both hold the
// CA (run with -race).
func TestChainCacheConcurrent(t *testing.T) {
	ca, err := devca.New(vectorTD)
	if err != nil {
		t.Fatal(err)
	}
	other, err := devca.New(vectorTD)
	if err != nil {
		t.Fatal(err)
	}
	cases := make([]*cacheCase, 4)
	for i := range cases {
		cases[i] = newCacheCase(t, ca, devca.SVIDOptions{})
	}
	one := ca.X509Bundle()
	two := x509bundle.FromX509Authorities(vectorTD, []*x509.Certificate{other.Certificate(), ca.Certificate()})
	src := &switchable{b: one}
	c := NewChainCache(2)
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if g == 0 && i%5 == 0 {
					b := two
					if i%10 == 0 {
						b = one
					}
					src.set(b)
				}
				k := cases[(g+i)%len(cases)]
				v, err := k.verify(c, src, now)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, call %d: %w", g, i, err)
					return
				}
				if !bytes.Equal(v.Chain[0].Raw, k.signed.Chain[0]) {
					errs <- fmt.Errorf("goroutine %d, call %d: verified with another chain's leaf", g, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := c.Len(); got > 2 {
		t.Errorf("the cache holds %d chains, bound 2", got)
	}
}
