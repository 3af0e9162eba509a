// Package devca is a development certificate authority for one SPIFFE trust
// domain: it issues X.509-SVIDs and JWT-SVIDs the way SPIRE would, for
// `ztlog dev` and for tests. It is not a production CA: its keys live in
// files, and there is no revocation.
package devca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// CA issues SVIDs for one trust domain.
type CA struct {
	TrustDomain spiffeid.TrustDomain
	cert        *x509.Certificate
	key         *ecdsa.PrivateKey
	jwtKey      *ecdsa.PrivateKey
	jwtKeyID    string
}

// New creates a CA with a fresh root certificate (valid ten years) and a
// fresh JWT signing key (ES256; JWT-SVIDs are never EdDSA).
func New(td spiffeid.TrustDomain) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	jwtKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"ztlog dev CA"}, CommonName: td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return build(td, cert, key, jwtKey)
}

func build(td spiffeid.TrustDomain, cert *x509.Certificate, key, jwtKey *ecdsa.PrivateKey) (*CA, error) {
	pub, err := x509.MarshalPKIXPublicKey(jwtKey.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	return &CA{TrustDomain: td, cert: cert, key: key, jwtKey: jwtKey, jwtKeyID: base64.RawURLEncoding.EncodeToString(sum[:12])}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// Certificate is the root certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// X509Bundle is the trust domain's X.509 bundle (the root).
func (ca *CA) X509Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.TrustDomain, []*x509.Certificate{ca.cert})
}

// JWTBundle is the trust domain's JWT bundle (the JWT signing key).
func (ca *CA) JWTBundle() *jwtbundle.Bundle {
	return jwtbundle.FromJWTAuthorities(ca.TrustDomain, map[string]crypto.PublicKey{ca.jwtKeyID: ca.jwtKey.Public()})
}

// Bundle is the SPIFFE bundle holding both.
func (ca *CA) Bundle() *spiffebundle.Bundle {
	b := spiffebundle.New(ca.TrustDomain)
	b.AddX509Authority(ca.cert)
	b.AddJWTAuthority(ca.jwtKeyID, ca.jwtKey.Public())
	return b
}

// SVIDOptions adjust an issued X.509-SVID.
type SVIDOptions struct {
	// TTL is the validity; default one hour.
	TTL time.Duration
	// DNSNames and IPs are added as SANs (for servers that plain TLS
	// clients reach by host name).
	DNSNames []string
	IPs      []net.IP
	// NotBefore overrides the start of validity (default: a minute ago).
	NotBefore time.Time
}

// IssueX509SVID issues an X.509-SVID for id.
func (ca *CA) IssueX509SVID(id spiffeid.ID, o SVIDOptions) (*x509svid.SVID, error) {
	if !id.MemberOf(ca.TrustDomain) {
		return nil, fmt.Errorf("devca: %s is not in the trust domain %s", id, ca.TrustDomain)
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Minute)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"SPIFFE"}},
		URIs:         []*url.URL{id.URL()},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotBefore.Add(o.TTL),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{cert}, PrivateKey: key}, nil
}

// IssueJWTSVID issues a JWT-SVID (ES256) for id with the given audience.
func (ca *CA) IssueJWTSVID(id spiffeid.ID, audience []string, ttl time.Duration) (string, error) {
	if len(audience) == 0 {
		return "", errors.New("devca: a JWT-SVID needs an audience")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ca.jwtKey, KeyID: ca.jwtKeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	return jwt.Signed(signer).Claims(jwt.Claims{
		Subject:  id.String(),
		Audience: audience,
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(ttl)),
		ID:       base64.RawURLEncoding.EncodeToString(serial().Bytes()[:12]),
	}).Serialize()
}

// File names under a CA directory.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca.key"
	jwtKeyFile = "jwt-signer.key"
)

// Save writes the CA's certificate and keys into dir (keys mode 0600).
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644); err != nil {
		return err
	}
	for name, k := range map[string]*ecdsa.PrivateKey{caKeyFile: ca.key, jwtKeyFile: ca.jwtKey} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Load reads a CA saved by Save. os.ErrNotExist if there is none.
func Load(dir string) (*CA, error) {
	raw, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		return nil, fmt.Errorf("devca: %s is not PEM", caCertFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if len(cert.URIs) != 1 {
		return nil, errors.New("devca: CA certificate has no trust domain URI")
	}
	td, err := spiffeid.TrustDomainFromURI(cert.URIs[0])
	if err != nil {
		return nil, err
	}
	keys := map[string]*ecdsa.PrivateKey{}
	for _, name := range []string{caKeyFile, jwtKeyFile} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(raw)
		if blk == nil {
			return nil, fmt.Errorf("devca: %s is not PEM", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("devca: %s is not an ECDSA key", name)
		}
		keys[name] = ek
	}
	return build(td, cert, keys[caKeyFile], keys[jwtKeyFile])
}

// WriteSVID writes an X.509-SVID as prefix.pem (chain) and prefix.key
// (PKCS#8, mode 0600), the layout `zt --svid prefix` reads.
func WriteSVID(prefix string, svid *x509svid.SVID) error {
	certs, key, err := svid.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".pem", certs, 0o644); err != nil {
		return err
	}
	return os.WriteFile(prefix+".key", key, 0o600)
}
