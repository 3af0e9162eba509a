package attestation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Limits on SPIFFE trust bundle material.
const (
	// MaxDomains is the most trust domains in Roots.
	MaxDomains = 16
	// MaxAuthorities is the most X.509 authorities of one trust domain.
	MaxAuthorities = 16
	// MaxAuthority is the largest authority certificate, in bytes of DER.
	MaxAuthority = 8 << 10
)

// Domain is one trust domain's X.509 authorities (SPIFFE trust bundle
// roots), each the DER of a CA certificate.
type Domain struct {
	TrustDomain string   `json:"trust_domain"`
	Authorities [][]byte `json:"x509_authorities"`
}

// Roots is SPIFFE trust bundle material: the X.509 authorities of one or
// more trust domains, in canonical order (trust domains ascending, each
// domain's authorities ascending by DER bytes, no duplicates), so that the
// same roots have one encoding.
type Roots struct {
	Domains []Domain
}

// ErrRoots is wrapped by errors about malformed trust bundle material.
var ErrRoots = errors.New("SPIFFE trust bundle")

// Canonical sorts and de-duplicates r in place and returns it.
func (r *Roots) Canonical() *Roots {
	byTD := map[string][][]byte{}
	for _, d := range r.Domains {
		byTD[d.TrustDomain] = append(byTD[d.TrustDomain], d.Authorities...)
	}
	r.Domains = r.Domains[:0]
	for td, as := range byTD {
		slices.SortFunc(as, bytes.Compare)
		as = slices.CompactFunc(as, bytes.Equal)
		r.Domains = append(r.Domains, Domain{TrustDomain: td, Authorities: as})
	}
	slices.SortFunc(r.Domains, func(a, b Domain) int { return strings.Compare(a.TrustDomain, b.TrustDomain) })
	return r
}

// Validate checks that r is in canonical order, within the limits, with
// valid trust domain names and certificates that parse.
func (r *Roots) Validate() error {
	if len(r.Domains) == 0 || len(r.Domains) > MaxDomains {
		return fmt.Errorf("%w: want 1 to %d trust domains, got %d", ErrRoots, MaxDomains, len(r.Domains))
	}
	for i, d := range r.Domains {
		td, err := spiffeid.TrustDomainFromString(d.TrustDomain)
		if err != nil || td.Name() != d.TrustDomain {
			return fmt.Errorf("%w: %q is not a trust domain name (e.g. example.org)", ErrRoots, d.TrustDomain)
		}
		if i > 0 && r.Domains[i-1].TrustDomain >= d.TrustDomain {
			return fmt.Errorf("%w: trust domains must be in ascending order, once each (%q after %q)", ErrRoots, d.TrustDomain, r.Domains[i-1].TrustDomain)
		}
		if len(d.Authorities) == 0 || len(d.Authorities) > MaxAuthorities {
			return fmt.Errorf("%w: %s: want 1 to %d X.509 authorities, got %d", ErrRoots, d.TrustDomain, MaxAuthorities, len(d.Authorities))
		}
		for k, der := range d.Authorities {
			if len(der) > MaxAuthority {
				return fmt.Errorf("%w: %s: authority %d is %d bytes, the limit is %d", ErrRoots, d.TrustDomain, k, len(der), MaxAuthority)
			}
			if k > 0 && bytes.Compare(d.Authorities[k-1], der) >= 0 {
				return fmt.Errorf("%w: %s: authorities must be in ascending order of their DER, once each", ErrRoots, d.TrustDomain)
			}
			if _, err := x509.ParseCertificate(der); err != nil {
				return fmt.Errorf("%w: %s: authority %d: %w", ErrRoots, d.TrustDomain, k, err)
			}
		}
	}
	return nil
}

// Digest is "sha256:" and the hex SHA-256 of r's JSON encoding (as a
// bundle carries it): a short name for the exact roots.
func (r *Roots) Digest() string {
	b, _ := json.Marshal(r.Domains)
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// TrustDomains lists r's trust domain names.
func (r *Roots) TrustDomains() []string {
	var out []string
	for _, d := range r.Domains {
		out = append(out, d.TrustDomain)
	}
	return out
}

// Set is r as a go-spiffe bundle source. r must be valid.
func (r *Roots) Set() (*x509bundle.Set, error) {
	set := x509bundle.NewSet()
	for _, d := range r.Domains {
		td, err := spiffeid.TrustDomainFromString(d.TrustDomain)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRoots, err)
		}
		var certs []*x509.Certificate
		for _, der := range d.Authorities {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrRoots, d.TrustDomain, err)
			}
			certs = append(certs, c)
		}
		set.Add(x509bundle.FromX509Authorities(td, certs))
	}
	return set, nil
}

// Within reports whether every authority of r is, byte for byte, one of
// pinned's for the same trust domain; if not, it says which is not.
func (r *Roots) Within(pinned *Roots) error {
	for _, d := range r.Domains {
		var have [][]byte
		for _, p := range pinned.Domains {
			if p.TrustDomain == d.TrustDomain {
				have = p.Authorities
			}
		}
		if have == nil {
			return fmt.Errorf("trust domain %s is not in the SPIFFE bundle you pinned (%s)", d.TrustDomain, strings.Join(pinned.TrustDomains(), ", "))
		}
		for k, der := range d.Authorities {
			if !slices.ContainsFunc(have, func(h []byte) bool { return bytes.Equal(h, der) }) {
				return fmt.Errorf("authority %d of trust domain %s (%s) is not one you pinned", k, d.TrustDomain, certDigest(der))
			}
		}
	}
	return nil
}

// Select returns the roots of the given trust domains that r has.
func (r *Roots) Select(tds ...string) *Roots {
	out := &Roots{}
	for _, d := range r.Domains {
		if slices.Contains(tds, d.TrustDomain) {
			out.Domains = append(out.Domains, d)
		}
	}
	return out
}

func certDigest(der []byte) string {
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:])
}

// FromSource reads the X.509 authorities of the given trust domains from
// a go-spiffe bundle source (a server's configured trust bundle). Trust
// domains it has no bundle for are left out.
func FromSource(src x509bundle.Source, tds ...spiffeid.TrustDomain) *Roots {
	r := &Roots{}
	for _, td := range tds {
		b, err := src.GetX509BundleForTrustDomain(td)
		if err != nil || b == nil {
			continue
		}
		d := Domain{TrustDomain: td.Name()}
		for _, c := range b.X509Authorities() {
			d.Authorities = append(d.Authorities, c.Raw)
		}
		if len(d.Authorities) > 0 {
			r.Domains = append(r.Domains, d)
		}
	}
	return r.Canonical()
}

// LoadRoots reads SPIFFE trust bundle material from a file, given as
// "FILE" or "TRUST_DOMAIN=FILE". The file is PEM (CERTIFICATE blocks) or a
// SPIFFE bundle (JWKS with x5c keys of use x509-svid). Without
// TRUST_DOMAIN, each authority's trust domain is read from its SPIFFE ID
// URI SAN (SPIFFE CAs carry spiffe://<trust domain>); an authority without
// one needs TRUST_DOMAIN=.
func LoadRoots(spec string) (*Roots, error) {
	file, tdName := spec, ""
	if td, f, ok := strings.Cut(spec, "="); ok {
		tdName, file = td, f
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRoots, err)
	}
	r, err := ParseRoots(raw, tdName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// ParseRoots reads PEM or a SPIFFE bundle (see LoadRoots); tdName, when
// not empty, is the trust domain of every authority.
func ParseRoots(raw []byte, tdName string) (*Roots, error) {
	var certs []*x509.Certificate
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		// The trust domain only labels the parsed bundle here.
		b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("parse.invalid"), raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRoots, err)
		}
		certs = b.X509Authorities()
	} else {
		rest := raw
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrRoots, err)
			}
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no X.509 authorities (want PEM certificates or a SPIFFE bundle)", ErrRoots)
	}
	r := &Roots{}
	for _, c := range certs {
		name := tdName
		if name == "" {
			td, err := caTrustDomain(c)
			if err != nil {
				return nil, err
			}
			name = td
		} else if td, err := spiffeid.TrustDomainFromString(name); err != nil || td.Name() != name {
			return nil, fmt.Errorf("%w: %q is not a trust domain name", ErrRoots, name)
		}
		r.Domains = append(r.Domains, Domain{TrustDomain: name, Authorities: [][]byte{c.Raw}})
	}
	r.Canonical()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func caTrustDomain(c *x509.Certificate) (string, error) {
	for _, u := range c.URIs {
		if td, err := spiffeid.TrustDomainFromURI(u); err == nil {
			return td.Name(), nil
		}
	}
	return "", fmt.Errorf("%w: authority %q has no SPIFFE ID URI SAN naming its trust domain: give it as TRUST_DOMAIN=FILE", ErrRoots, c.Subject.String())
}
