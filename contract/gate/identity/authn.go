package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Method is how a caller proved its identity.
type Method string

// The two ways in.
const (
	X509SVID Method = "x509-svid"
	JWTSVID  Method = "jwt-svid"
)

// Caller is an authenticated caller.
type Caller struct {
	// ID is the caller's SPIFFE ID: the actor of everything it asks.
	ID     spiffeid.ID
	Method Method
	// Serial is the X.509-SVID's serial number (hex) or the JWT-SVID's jti.
	Serial string
	// Expires is the SVID's expiry.
	Expires time.Time
}

// Errors of Authenticate: the caller is not authenticated (HTTP 401).
var (
	// ErrNoIdentity: no client certificate and no bearer token.
	ErrNoIdentity = errors.New("no SPIFFE identity: present an X.509-SVID (mutual TLS) or a JWT-SVID bearer token")
	// ErrInvalid: the credential presented does not verify.
	ErrInvalid = errors.New("SPIFFE identity does not verify")
)

// ServerTLS is the TLS configuration of the contract's listener: the
// server's SVID from src (asked again on every handshake, so rotation
// applies without restart), TLS 1.2+, and client certificates requested but
// not required, since JWT-SVID callers come without one. A client
// certificate that is presented must be an X.509-SVID that verifies against
// src's bundles, or the handshake fails.
func ServerTLS(src Source) *tls.Config {
	verify := tlsconfig.VerifyPeerCertificate(src, tlsconfig.AuthorizeAny())
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: tlsconfig.GetCertificate(src),
		ClientAuth:     tls.RequestClientCert,
		// A resumed session skips VerifyPeerCertificate: a client would
		// keep its identity after its CA left the trust bundle. Every
		// connection verifies its SVID (keep-alive keeps the cost low).
		SessionTicketsDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, chains [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			return verify(raw, chains)
		},
	}
}

// ClientTLS is the TLS configuration of an agent (or admin, broker) calling
// the contract with its X.509-SVID: the server must present an X.509-SVID
// of the given SPIFFE ID (or, if server is the zero ID, any member of the
// bundle's trust domain).
func ClientTLS(svid x509svid.Source, bundle Source, server spiffeid.ID, td spiffeid.TrustDomain) *tls.Config {
	auth := tlsconfig.AuthorizeMemberOf(td)
	if !server.IsZero() {
		auth = tlsconfig.AuthorizeID(server)
	}
	return tlsconfig.MTLSClientConfig(svid, bundle, auth)
}

// Authenticator turns a request into a Caller.
type Authenticator struct {
	src      Source
	audience []string
	now      func() time.Time
}

// NewAuthenticator authenticates against src's bundles. audience is what a
// JWT-SVID must be issued for (usually the service's own SPIFFE ID); it must
// not be empty, since go-spiffe skips the check for an empty audience.
func NewAuthenticator(src Source, audience []string) (*Authenticator, error) {
	if len(audience) == 0 {
		return nil, errors.New("identity: a JWT-SVID audience is required (the service's SPIFFE ID)")
	}
	for _, a := range audience {
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("identity: empty JWT-SVID audience")
		}
	}
	return &Authenticator{src: src, audience: audience, now: time.Now}, nil
}

// Audience is the JWT-SVID audience required.
func (a *Authenticator) Audience() []string { return a.audience }

// Authenticate reads the caller's identity from the verified TLS client
// certificate or the Authorization: Bearer JWT-SVID. If both are present
// they must name the same SPIFFE ID. Errors wrap ErrNoIdentity or ErrInvalid.
func (a *Authenticator) Authenticate(r *http.Request) (*Caller, error) {
	var fromCert, fromToken *Caller
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		// The chain was verified against the bundle during the handshake;
		// a long-lived connection can outlive the SVID, so check again.
		if now := a.now(); now.After(leaf.NotAfter) {
			return nil, fmt.Errorf("%w: client X.509-SVID expired at %s; reconnect with a fresh SVID", ErrInvalid, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		id, err := x509svid.IDFromCert(leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", ErrInvalid, err)
		}
		fromCert = &Caller{ID: id, Method: X509SVID, Serial: fmt.Sprintf("%x", leaf.SerialNumber), Expires: leaf.NotAfter}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			return nil, fmt.Errorf("%w: Authorization must be \"Bearer <JWT-SVID>\"", ErrInvalid)
		}
		svid, err := jwtsvid.ParseAndValidate(token, a.src, a.audience)
		if err != nil {
			return nil, fmt.Errorf("%w: JWT-SVID: %w", ErrInvalid, err)
		}
		// go-jose tolerates a minute past exp; an expired token is refused
		// here at once, by the same clock as X.509-SVIDs.
		if now := a.now(); !now.Before(svid.Expiry) {
			return nil, fmt.Errorf("%w: JWT-SVID expired at %s; fetch a fresh one", ErrInvalid, svid.Expiry.UTC().Format(time.RFC3339))
		}
		jti, _ := svid.Claims["jti"].(string)
		fromToken = &Caller{ID: svid.ID, Method: JWTSVID, Serial: jti, Expires: svid.Expiry}
	}
	switch {
	case fromCert != nil && fromToken != nil:
		if fromCert.ID != fromToken.ID {
			return nil, fmt.Errorf("%w: the client certificate is %s but the bearer token is %s", ErrInvalid, fromCert.ID, fromToken.ID)
		}
		return fromCert, nil
	case fromCert != nil:
		return fromCert, nil
	case fromToken != nil:
		return fromToken, nil
	}
	return nil, ErrNoIdentity
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller stored by WithCaller, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}
