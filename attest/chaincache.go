package attest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultMaxChains is the number of signer chains a ChainCache holds when
// NewChainCache is given no bound.
const DefaultMaxChains = 1024

// ChainCache remembers the X.509-SVID signer chains that verified, so that
// a service verifies each distinct chain once per trust bundle and
// validity window rather than once per statement (an agent or broker
// presents the same chain for hours; its verification is an ECDSA
// signature check and the parsing of every certificate).
//
// A remembered chain is used only when all of these hold, and is verified
// in full otherwise, exactly as Verify does:
//   - the chain is the same bytes: the key is SHA-256 over the
//     length-prefixed DER of each certificate;
//   - the X.509 authorities of its trust domain that the bundle source
//     gives now are the ones it verified against (SHA-256 over their
//     length-prefixed DER, in the bundle's order), so a CA rotation or any
//     other change of the bundle is a miss;
//   - now is within every certificate's validity, the presented ones and
//     those of the path that verified (the intersection of their
//     [NotBefore, NotAfter] is kept).
//
// The result of x509svid.Verify depends on nothing else: the leaf's
// SPIFFE ID and trust domain come from its bytes, and the bundle source is
// asked only for that trust domain's authorities.
//
// A ChainCache holds at most its bound of chains (one is dropped for each
// new one beyond it), is safe for concurrent use, and belongs to one
// service: make one per instance. A nil *ChainCache remembers nothing.
type ChainCache struct {
	max    int
	mu     sync.Mutex
	chains map[[32]byte]*verifiedChain
}

// verifiedChain is a chain that verified, and what it verified against.
type verifiedChain struct {
	id   spiffeid.ID
	leaf *x509.Certificate
	// path is the verified path, leaf to authority.
	path []*x509.Certificate
	// authorities is the digest of the trust domain's authorities it
	// verified against.
	authorities [32]byte
	// notBefore, notAfter: the intersection of the validity windows of
	// the presented certificates and of path.
	notBefore, notAfter time.Time
}

// NewChainCache returns an empty cache holding at most max chains
// (DefaultMaxChains when max <= 0).
func NewChainCache(max int) *ChainCache {
	if max <= 0 {
		max = DefaultMaxChains
	}
	return &ChainCache{max: max, chains: make(map[[32]byte]*verifiedChain)}
}

// Verify is the package's Verify with the signer chain's verification
// remembered: the same checks in the same order with the same errors, the
// same Verified. The envelope's signature and statement are checked every
// time. A nil c verifies the chain every time (that is the package's
// Verify).
func (c *ChainCache) Verify(ctx context.Context, rawEnvelope []byte, chain [][]byte, bundles x509bundle.Source, now time.Time, predicateType string) (*Verified, error) {
	if bundles == nil || now.IsZero() {
		return nil, errors.New("attest: Verify needs trust bundles and a verification time")
	}
	d, err := decodeEnvelope(rawEnvelope)
	if err != nil {
		return nil, err
	}
	if err := checkChainSize(chain); err != nil {
		return nil, err
	}
	vc, err := c.chain(chain, bundles, now)
	if err != nil {
		return nil, err
	}
	return verifySigned(ctx, d, vc.id, vc.leaf, slices.Clone(vc.path), predicateType)
}

// Len is the number of chains held.
func (c *ChainCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.chains)
}

// chain returns the verified chain, remembered or verified now (always
// verified now when c is nil).
func (c *ChainCache) chain(chain [][]byte, bundles x509bundle.Source, now time.Time) (*verifiedChain, error) {
	if c == nil {
		vc, _, err := verifyFull(chain, bundles, now)
		return vc, err
	}
	key := chainKey(chain)
	c.mu.Lock()
	vc := c.chains[key]
	c.mu.Unlock()
	if vc != nil && vc.valid(bundles, now) {
		return vc, nil
	}
	vc, keep, err := verifyFull(chain, bundles, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || !keep || !vc.within(now) {
		// Whatever was remembered under this key no longer holds. (A
		// chain that verified with a presented certificate outside its
		// validity, one the path did not need, is of no use later.)
		delete(c.chains, key)
		return vc, err
	}
	if _, ok := c.chains[key]; !ok && len(c.chains) >= c.max {
		for k := range c.chains { // map order: an arbitrary one
			delete(c.chains, k)
			break
		}
	}
	c.chains[key] = vc
	return vc, nil
}

// valid reports whether vc may stand for a verification at now against
// bundles: its trust domain's authorities are the ones it verified
// against, and now is within its validity.
func (vc *verifiedChain) valid(bundles x509bundle.Source, now time.Time) bool {
	if !vc.within(now) {
		return false
	}
	b, err := bundles.GetX509BundleForTrustDomain(vc.id.TrustDomain())
	if err != nil || b == nil {
		return false
	}
	return authoritiesDigest(b.X509Authorities()) == vc.authorities
}

func (vc *verifiedChain) within(now time.Time) bool {
	return !now.Before(vc.notBefore) && !now.After(vc.notAfter)
}

// verifyFull parses and verifies chain as Verify does, against one
// snapshot of its trust domain's authorities, so that the digest kept is
// of the authorities it verified against whatever the source does
// meanwhile. keep is false when there was no snapshot to take (the leaf
// names no trust domain, or the source had no bundle for it a moment
// ago): then the chain is verified through the source itself, as Verify
// does, and not remembered.
func verifyFull(chain [][]byte, bundles x509bundle.Source, now time.Time) (vc *verifiedChain, keep bool, err error) {
	certs, err := parseChain(chain)
	if err != nil {
		return nil, false, err
	}
	var source x509bundle.Source = bundles
	var authorities [32]byte
	if id, err := x509svid.IDFromCert(certs[0]); err == nil {
		if b, err := bundles.GetX509BundleForTrustDomain(id.TrustDomain()); err == nil && b != nil {
			auth := b.X509Authorities()
			source, authorities, keep = x509bundle.FromX509Authorities(id.TrustDomain(), auth), authoritiesDigest(auth), true
		}
	}
	id, path, err := verifyChain(certs, source, now)
	if err != nil {
		return nil, false, err
	}
	vc = &verifiedChain{id: id, leaf: certs[0], path: path, authorities: authorities,
		notBefore: certs[0].NotBefore, notAfter: certs[0].NotAfter}
	for _, cert := range slices.Concat(certs, path) {
		if cert.NotBefore.After(vc.notBefore) {
			vc.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(vc.notAfter) {
			vc.notAfter = cert.NotAfter
		}
	}
	return vc, keep, nil
}

// chainKey is SHA-256 over the length-prefixed DER of each certificate.
func chainKey(chain [][]byte) [32]byte {
	h := sha256.New()
	for _, der := range chain {
		writePrefixed(h, der)
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// authoritiesDigest is SHA-256 over the length-prefixed DER of each
// authority, in order.
func authoritiesDigest(authorities []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, a := range authorities {
		writePrefixed(h, a.Raw)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func writePrefixed(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
