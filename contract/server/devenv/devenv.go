// Package devenv creates the development trust domain `ztlog dev` serves
// with: a dev CA, fresh X.509-SVIDs for the server, a demo agent, a demo
// broker and an admin, the agent's JWT-SVID, a receipt signing key, a
// delegated-user issuer with one user token, and the example policies.
//
// Everything lives under one directory. The CA, the receipt key, the user
// issuer key and the policies are created once and kept (an operator's
// edits to the policies survive); SVIDs and tokens are reissued at every
// Create. Not for production: the CA key sits on disk beside the SVIDs.
package devenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/devca"
)

// The dev trust domain and its identities.
var (
	TrustDomain = spiffeid.RequireTrustDomainFromString("dev.ztlog.local")
	ServerID    = spiffeid.RequireFromPath(TrustDomain, "/ztlog")
	AgentID     = spiffeid.RequireFromPath(TrustDomain, "/agent/demo")
	BrokerID    = spiffeid.RequireFromPath(TrustDomain, "/broker/demo")
	AdminID     = spiffeid.RequireFromPath(TrustDomain, "/admin")
)

// SVIDTTL is the lifetime of the dev SVIDs and tokens.
const SVIDTTL = 24 * time.Hour

// UserIssuer is the issuer of the dev delegated-user tokens.
const UserIssuer = "https://users.dev.ztlog.local"

// Env is a created dev environment: the paths of its files.
type Env struct {
	// Dir holds everything; NAME.pem and NAME.key are the X.509-SVIDs of
	// server, agent, broker and admin.
	Dir string
	// BundlePEM and BundleJSON are the trust bundle (CA certificate; SPIFFE
	// bundle with the JWT authorities).
	BundlePEM, BundleJSON string
	// AgentJWT is the demo agent's JWT-SVID for the server.
	AgentJWT string
	// ReceiptKey is the receipt signing key (private JWK).
	ReceiptKey string
	// UserJWKS is the user issuer's public JWKS; UserJWT alice's token
	// (scope search.deep, delegated to the demo agent).
	UserJWKS, UserJWT string
}

// SVID is the path prefix of the X.509-SVID of name (server, agent,
// broker or admin).
func (e *Env) SVID(name string) string { return filepath.Join(e.Dir, name) }

// Policy is the directory of the example policy for engine (opa or cedar).
func (e *Env) Policy(engine string) string { return filepath.Join(e.Dir, "policy", engine) }

// Create creates or refreshes the environment in dir. listen is the
// server's listen address: a specific non-loopback IP in it is added to
// the server SVID. policies holds the example policies as opa/ and cedar/.
func Create(dir, listen string, policies fs.FS) (*Env, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, BundlePEM: filepath.Join(dir, "bundle.pem"), BundleJSON: filepath.Join(dir, "bundle.json"),
		AgentJWT: filepath.Join(dir, "agent.jwt"), ReceiptKey: filepath.Join(dir, "receipt.jwk"),
		UserJWKS: filepath.Join(dir, "user-issuer.jwks"), UserJWT: filepath.Join(dir, "user.jwt")}
	ca, err := loadCA(filepath.Join(dir, "ca"))
	if err != nil {
		return nil, fmt.Errorf("dev CA: %w", err)
	}
	if err := e.issue(ca, listen); err != nil {
		return nil, err
	}
	if err := e.receiptKey(); err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	if err := writePolicies(filepath.Join(dir, "policy"), policies); err != nil {
		return nil, fmt.Errorf("example policies: %w", err)
	}
	if err := e.userIssuer(); err != nil {
		return nil, fmt.Errorf("dev user issuer: %w", err)
	}
	return e, nil
}

func loadCA(dir string) (*devca.CA, error) {
	ca, err := devca.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = devca.New(TrustDomain); err == nil {
			err = ca.Save(dir)
		}
	}
	return ca, err
}

// issue writes fresh SVIDs, the bundles and the agent's JWT-SVID.
func (e *Env) issue(ca *devca.CA, listen string) error {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			ips = append(ips, ip)
		}
	}
	for name, id := range map[string]spiffeid.ID{"server": ServerID, "agent": AgentID, "broker": BrokerID, "admin": AdminID} {
		o := devca.SVIDOptions{TTL: SVIDTTL}
		if name == "server" {
			o.DNSNames, o.IPs = []string{"localhost"}, ips
		}
		svid, err := ca.IssueX509SVID(id, o)
		if err != nil {
			return fmt.Errorf("SVID of %s: %w", name, err)
		}
		if err := devca.WriteSVID(e.SVID(name), svid); err != nil {
			return err
		}
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate().Raw})
	if err := os.WriteFile(e.BundlePEM, certPEM, 0o644); err != nil {
		return err
	}
	bundle, err := ca.Bundle().Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.BundleJSON, bundle, 0o644); err != nil {
		return err
	}
	tok, err := ca.IssueJWTSVID(AgentID, []string{ServerID.String()}, SVIDTTL)
	if err != nil {
		return fmt.Errorf("JWT-SVID of the agent: %w", err)
	}
	return os.WriteFile(e.AgentJWT, []byte(tok+"\n"), 0o600)
}

// receiptKey creates the receipt key once.
func (e *Env) receiptKey() error {
	if _, err := os.Stat(e.ReceiptKey); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	k, err := receipt.GenerateKey("")
	if err != nil {
		return err
	}
	return receipt.WriteKeyFile(e.ReceiptKey, k)
}

// writePolicies copies the example policies of each engine into dst/ENGINE
// unless that directory exists (the operator's edits are kept).
func writePolicies(dst string, policies fs.FS) error {
	for _, engine := range []string{"opa", "cedar"} {
		dir := filepath.Join(dst, engine)
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		entries, err := fs.ReadDir(policies, engine)
		if err != nil {
			return err
		}
		for _, ent := range entries {
			b, err := fs.ReadFile(policies, engine+"/"+ent.Name())
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, ent.Name()), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// userIssuer creates (once) a user token issuer key (user-issuer.jwk, its
// public JWKS user-issuer.jwks) and issues user.jwt: the user alice, scope
// search.deep, delegated to the demo agent, for a day.
func (e *Env) userIssuer() error {
	keyFile := filepath.Join(e.Dir, "user-issuer.jwk")
	var jwk jose.JSONWebKey
	if b, err := os.ReadFile(keyFile); err == nil {
		if err := json.Unmarshal(b, &jwk); err != nil {
			return fmt.Errorf("%s: %w", keyFile, err)
		}
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		jwk = jose.JSONWebKey{Key: k, KeyID: "dev-user-issuer", Algorithm: "ES256", Use: "sig"}
		b, _ := json.Marshal(jwk)
		if err := os.WriteFile(keyFile, b, 0o600); err != nil {
			return err
		}
	}
	pub, _ := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}, "", "  ")
	if err := os.WriteFile(e.UserJWKS, pub, 0o644); err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return err
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": UserIssuer, "sub": "alice", "aud": ServerID.String(),
		"iat": now.Unix(), "exp": now.Add(SVIDTTL).Unix(),
		"scope": "search.deep", "act": map[string]any{"sub": AgentID.String()},
	}).Serialize()
	if err != nil {
		return err
	}
	return os.WriteFile(e.UserJWT, []byte(tok+"\n"), 0o600)
}
