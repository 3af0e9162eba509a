// Package identity authenticates callers of the ztlog contract by SPIFFE
// identity: X.509-SVIDs over mutual TLS (go-spiffe tlsconfig), or JWT-SVID
// bearer tokens whose audience is always checked. Trust material (the
// server's own SVID, X.509 and JWT bundles) comes from the SPIFFE Workload
// API or from files.
package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Source supplies the server's X.509-SVID and the bundles that callers'
// SVIDs are verified against. Implementations pick up rotation: every TLS
// handshake asks again.
type Source interface {
	x509svid.Source
	x509bundle.Source
	jwtbundle.Source
	// Check reports why the source cannot serve (for /readyz), nil if it can.
	Check() error
	// Describe names the source for logs.
	Describe() string
	Close() error
}

// Files are the file paths of a file-based source.
type Files struct {
	// Cert and Key are the server's X.509-SVID (PEM chain, leaf first) and
	// its private key (PEM PKCS#8).
	Cert, Key string
	// Bundle is the trust bundle: PEM certificates (X.509 authorities
	// only) or a SPIFFE bundle (JWKS with x509-svid and jwt-svid keys).
	Bundle string
	// JWTBundle is an optional SPIFFE bundle / JWKS with the JWT authorities,
	// when Bundle is PEM.
	JWTBundle string
	// TrustDomain of the bundle; default: the server SVID's.
	TrustDomain string
}

type fileSource struct {
	files Files
	mu    sync.RWMutex
	svid  *x509svid.SVID
	x509  *x509bundle.Set
	jwt   *jwtbundle.Set
}

// FromFiles loads a source from files. The returned source also has a
// Reload() error method that re-reads them (ztlog serve calls it on SIGHUP).
func FromFiles(f Files) (Source, error) {
	s := &fileSource{files: f}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files; on error the previous material stays in use.
func (s *fileSource) Reload() error {
	svid, err := x509svid.Load(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("identity: server SVID %s, %s: %w", s.files.Cert, s.files.Key, err)
	}
	td := svid.ID.TrustDomain()
	if s.files.TrustDomain != "" {
		if td, err = spiffeid.TrustDomainFromString(s.files.TrustDomain); err != nil {
			return fmt.Errorf("identity: trust domain %q: %w", s.files.TrustDomain, err)
		}
	}
	x509Set, jwtSet := x509bundle.NewSet(), jwtbundle.NewSet()
	if err := loadBundle(s.files.Bundle, td, x509Set, jwtSet); err != nil {
		return err
	}
	if s.files.JWTBundle != "" {
		if err := loadBundle(s.files.JWTBundle, td, x509Set, jwtSet); err != nil {
			return err
		}
	}
	if !x509Set.Has(td) {
		return fmt.Errorf("identity: %s holds no X.509 authorities for %s", s.files.Bundle, td)
	}
	s.mu.Lock()
	s.svid, s.x509, s.jwt = svid, x509Set, jwtSet
	s.mu.Unlock()
	return nil
}

func loadBundle(path string, td spiffeid.TrustDomain, x509Set *x509bundle.Set, jwtSet *jwtbundle.Set) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("identity: trust bundle: %w", err)
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		b, err := spiffebundle.Parse(td, raw)
		if err != nil {
			return fmt.Errorf("identity: trust bundle %s: %w", path, err)
		}
		if len(b.X509Authorities()) > 0 {
			x509Set.Add(b.X509Bundle())
		}
		if len(b.JWTAuthorities()) > 0 {
			jwtSet.Add(b.JWTBundle())
		}
		return nil
	}
	b, err := x509bundle.Parse(td, raw)
	if err != nil {
		return fmt.Errorf("identity: trust bundle %s: %w", path, err)
	}
	x509Set.Add(b)
	return nil
}

func (s *fileSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid, nil
}

func (s *fileSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.x509.GetX509BundleForTrustDomain(td)
}

func (s *fileSource) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.jwt.GetJWTBundleForTrustDomain(td)
}

func (s *fileSource) Check() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return checkSVID(s.svid)
}

func (s *fileSource) Describe() string { return "files " + s.files.Cert }
func (s *fileSource) Close() error     { return nil }

func checkSVID(svid *x509svid.SVID) error {
	if svid == nil || len(svid.Certificates) == 0 {
		return errors.New("no server SVID")
	}
	if exp := svid.Certificates[0].NotAfter; time.Now().After(exp) {
		return fmt.Errorf("server SVID %s expired at %s", svid.ID, exp.UTC().Format(time.RFC3339))
	}
	return nil
}

type workloadSource struct {
	addr   string
	client *workloadapi.Client
	x509   *workloadapi.X509Source
	jwt    *workloadapi.JWTSource
}

// ErrNoWorkloadAPI: FromWorkloadAPI was given no address and
// SPIFFE_ENDPOINT_SOCKET is not set.
var ErrNoWorkloadAPI = errors.New("identity: no Workload API address (give one, or set SPIFFE_ENDPOINT_SOCKET)")

// FromWorkloadAPI connects to the SPIFFE Workload API at addr
// ("unix:///path" or "tcp://host:port"; "" means $SPIFFE_ENDPOINT_SOCKET)
// and waits, at most timeout, for the first SVID and bundles. The sources
// keep streaming: a rotated SVID is used from the next handshake on.
func FromWorkloadAPI(ctx context.Context, addr string, timeout time.Duration) (Source, error) {
	if addr == "" {
		addr = os.Getenv("SPIFFE_ENDPOINT_SOCKET")
	}
	if addr == "" {
		return nil, ErrNoWorkloadAPI
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// The sources live beyond ctx; only their first update is bounded.
	client, err := workloadapi.New(context.WithoutCancel(ctx), workloadapi.WithAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("identity: Workload API %s: %w", addr, err)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	x509src, err := workloadapi.NewX509Source(wctx, workloadapi.WithClient(client))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("identity: no X.509-SVID from the Workload API at %s within %s: %w", addr, timeout, err)
	}
	jwtsrc, err := workloadapi.NewJWTSource(wctx, workloadapi.WithClient(client))
	if err != nil {
		x509src.Close()
		client.Close()
		return nil, fmt.Errorf("identity: no JWT bundles from the Workload API at %s within %s: %w", addr, timeout, err)
	}
	return &workloadSource{addr: addr, client: client, x509: x509src, jwt: jwtsrc}, nil
}

func (s *workloadSource) GetX509SVID() (*x509svid.SVID, error) { return s.x509.GetX509SVID() }
func (s *workloadSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.x509.GetX509BundleForTrustDomain(td)
}
func (s *workloadSource) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	return s.jwt.GetJWTBundleForTrustDomain(td)
}
func (s *workloadSource) Check() error {
	svid, err := s.x509.GetX509SVID()
	if err != nil {
		return err
	}
	return checkSVID(svid)
}
func (s *workloadSource) Describe() string { return "workload-api " + s.addr }
func (s *workloadSource) Close() error {
	return errors.Join(s.x509.Close(), s.jwt.Close(), s.client.Close())
}
