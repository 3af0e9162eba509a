package receipt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/internal/fsx"
)

// Key is a receipt signing key: a private JWK whose kid is its RFC 7638
// thumbprint (base64url SHA-256) and whose alg is EdDSA or ES256.
type Key struct {
	jwk    jose.JSONWebKey
	signer jose.Signer
	// header is the base64url protected header, for the EdDSA fast path.
	header string
}

// GenerateKey creates a signing key for alg ("EdDSA", the default when
// empty, or "ES256").
func GenerateKey(alg string) (*Key, error) {
	var priv crypto.Signer
	switch jose.SignatureAlgorithm(alg) {
	case "", jose.EdDSA:
		alg = string(jose.EdDSA)
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		priv = k
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		priv = k
	default:
		return nil, fmt.Errorf("receipt: algorithm %q is not supported (EdDSA or ES256)", alg)
	}
	return NewKey(priv, alg)
}

// NewKey wraps a private key (ed25519.PrivateKey for EdDSA, *ecdsa.PrivateKey
// on P-256 for ES256).
func NewKey(priv crypto.Signer, alg string) (*Key, error) {
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		if alg != string(jose.EdDSA) {
			return nil, fmt.Errorf("receipt: an Ed25519 key signs EdDSA, not %q", alg)
		}
	case *ecdsa.PrivateKey:
		if alg != string(jose.ES256) || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("receipt: an ECDSA key must be P-256 and sign ES256")
		}
	default:
		return nil, fmt.Errorf("receipt: unsupported key type %T", priv)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(map[string]string{"alg": alg, "kid": jwk.KeyID, "typ": Type})
	if err != nil {
		return nil, err
	}
	return &Key{jwk: jwk, signer: signer, header: base64.RawURLEncoding.EncodeToString(hdr)}, nil
}

// ID is the key's kid.
func (k *Key) ID() string { return k.jwk.KeyID }

// Public is the key's public JWK, as published in the JWKS.
func (k *Key) Public() jose.JSONWebKey { return k.jwk.Public() }

// Sign issues a receipt for c. It refuses claims that Parse would refuse.
func (k *Key) Sign(c Claims) (string, error) {
	if c.Version == 0 {
		c.Version = Version
	}
	if err := c.validate(); err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	if priv, ok := k.jwk.Key.(ed25519.PrivateKey); ok {
		// EdDSA is deterministic: signing header.payload directly gives the
		// same compact JWS as go-jose (the golden vector checks), without
		// its per-call JSON and reflection work.
		signingInput := k.header + "." + base64.RawURLEncoding.EncodeToString(payload)
		return signingInput + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(signingInput))), nil
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("receipt: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// MarshalJSON writes the private JWK (for a key file).
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.jwk) }

// ParseKey reads a private JWK written by WriteKeyFile.
func ParseKey(b []byte) (*Key, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, fmt.Errorf("receipt: key: %w", err)
	}
	if jwk.IsPublic() {
		return nil, errors.New("receipt: key: this is a public key; a signing key file holds the private JWK")
	}
	priv, ok := jwk.Key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("receipt: key: unsupported key type %T", jwk.Key)
	}
	k, err := NewKey(priv, jwk.Algorithm)
	if err != nil {
		return nil, err
	}
	if jwk.KeyID != "" && jwk.KeyID != k.ID() {
		return nil, fmt.Errorf("receipt: key: kid %q is not the key's thumbprint %q", jwk.KeyID, k.ID())
	}
	return k, nil
}

// LoadKey reads a key file.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k to a new file with mode 0600; it never overwrites.
func WriteKeyFile(path string, k *Key) error {
	b, err := k.MarshalJSON()
	if err != nil {
		return err
	}
	return fsx.Write(path, append(b, '\n'), "a receipt signing key")
}

// Keyset is the issuer's keys: one current key that signs, and retired keys
// that stay published in the JWKS until every receipt they signed has
// expired. Safe for concurrent use.
type Keyset struct {
	mu      sync.RWMutex
	current *Key
	retired []retiredKey
}

type retiredKey struct {
	pub   jose.JSONWebKey
	until time.Time
}

// NewKeyset starts a keyset with current as the signing key.
func NewKeyset(current *Key) *Keyset { return &Keyset{current: current} }

// Current is the signing key.
func (s *Keyset) Current() *Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}

// Rotate makes next the signing key. The previous key stays in the JWKS
// until publishUntil, which must be no earlier than the expiry of the last
// receipt it signed (now + the receipt lifetime).
func (s *Keyset) Rotate(next *Key, publishUntil time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil && s.current.ID() != next.ID() {
		s.retired = append(s.retired, retiredKey{pub: s.current.Public(), until: publishUntil})
	}
	s.current = next
}

// Retire publishes pub, a key that no longer signs, until the given time.
// Use it at startup for the keys that signed before a restart.
func (s *Keyset) Retire(pub jose.JSONWebKey, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = append(s.retired, retiredKey{pub: pub.Public(), until: until})
}

// JWKS is the key set to publish at time now: the current key and every
// retired key whose receipts may still be unexpired.
func (s *Keyset) JWKS(now time.Time) *jose.JSONWebKeySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &jose.JSONWebKeySet{}
	if s.current != nil {
		out.Keys = append(out.Keys, s.current.Public())
	}
	seen := map[string]bool{}
	if s.current != nil {
		seen[s.current.ID()] = true
	}
	kept := s.retired[:0]
	for _, r := range s.retired {
		if !now.Before(r.until) {
			continue // every receipt it signed has expired
		}
		kept = append(kept, r)
		if !seen[r.pub.KeyID] {
			seen[r.pub.KeyID] = true
			out.Keys = append(out.Keys, r.pub)
		}
	}
	s.retired = kept
	return out
}
