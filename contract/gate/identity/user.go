package identity

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// UserTokenHeader carries the delegated user's token on a decision request.
const UserTokenHeader = "X-ZT-User-Token"

// User is a delegated user: someone on whose behalf the agent acts.
type User = entry.User

// UserError says why a user token was refused; Code is the reason code the
// decision commits (user.invalid, user.expired, user.audience, user.issuer,
// user.delegation, user.unsupported).
type UserError struct {
	Code    string
	Message string
}

func (e *UserError) Error() string { return e.Code + ": " + e.Message }

func userErr(code, format string, a ...any) *UserError {
	return &UserError{Code: code, Message: fmt.Sprintf(format, a...)}
}

// UserConfig configures a UserVerifier.
type UserConfig struct {
	// Issuer is the required "iss".
	Issuer string
	// Keys are the issuer's signing keys (public JWKS).
	Keys *jose.JSONWebKeySet
	// Audience is the required "aud" (the service).
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf, iat (default 30s).
	Leeway time.Duration
}

// UserVerifier checks delegated user tokens: a JWT from the configured
// issuer, signed by a key of its JWKS, for this service's audience, not
// expired, whose delegation claim names the calling agent:
//
//	{"iss": ..., "sub": "alice", "aud": "<service>", "exp": ...,
//	 "scope": "search.deep search.fast",       (or "scp": [...])
//	 "act": {"sub": "spiffe://td/agent/a"}}    (RFC 8693 actor claim)
type UserVerifier struct {
	cfg  UserConfig
	keys atomic.Pointer[userKeys]
}

// userKeys is one version of the issuer's JWKS and the algorithms it allows.
type userKeys struct {
	set  *jose.JSONWebKeySet
	algs []jose.SignatureAlgorithm
}

// NewUserVerifier checks cfg. The accepted algorithms are exactly those of
// the JWKS's keys (RS256, PS256, ES256, ES384, EdDSA).
func NewUserVerifier(cfg UserConfig) (*UserVerifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("identity: a user token verifier needs an issuer, an audience and the issuer's JWKS")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	v := &UserVerifier{cfg: cfg}
	if err := v.SetKeys(cfg.Keys); err != nil {
		return nil, err
	}
	return v, nil
}

// SetKeys replaces the issuer's JWKS (the issuer rotated its keys): tokens
// verify against the new set from the next call on. A set that is empty,
// holds a private key or a key of an unaccepted algorithm is refused and the
// keys in use stay.
func (v *UserVerifier) SetKeys(set *jose.JSONWebKeySet) error {
	if set == nil || len(set.Keys) == 0 {
		return errors.New("identity: the user token issuer's JWKS has no keys")
	}
	seen := map[jose.SignatureAlgorithm]bool{}
	var algs []jose.SignatureAlgorithm
	for i, k := range set.Keys {
		if !k.IsPublic() {
			return fmt.Errorf("identity: user JWKS key %d (%s) is private; publish public keys only", i, k.KeyID)
		}
		alg, err := keyAlgorithm(k)
		if err != nil {
			return fmt.Errorf("identity: user JWKS key %d (%s): %w", i, k.KeyID, err)
		}
		if !seen[alg] {
			seen[alg] = true
			algs = append(algs, alg)
		}
	}
	v.keys.Store(&userKeys{set: set, algs: algs})
	return nil
}

func keyAlgorithm(k jose.JSONWebKey) (jose.SignatureAlgorithm, error) {
	if k.Algorithm != "" {
		switch a := jose.SignatureAlgorithm(k.Algorithm); a {
		case jose.RS256, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA:
			return a, nil
		default:
			return "", fmt.Errorf("algorithm %q is not accepted", k.Algorithm)
		}
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		if key.Curve.Params().Name == "P-384" {
			return jose.ES384, nil
		}
		return jose.ES256, nil
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T", k.Key)
}

// LoadJWKS reads a JWKS file.
func LoadJWKS(path string) (*jose.JSONWebKeySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s jose.JSONWebKeySet
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: not a JWKS: %w", path, err)
	}
	return &s, nil
}

type userClaims struct {
	Scope string   `json:"scope"`
	Scp   []string `json:"scp"`
	Act   *struct {
		Sub string `json:"sub"`
	} `json:"act"`
}

// Verify checks token for a request by agent at time now.
func (v *UserVerifier) Verify(token string, agent spiffeid.ID, now time.Time) (*User, error) {
	if len(token) > 16<<10 {
		return nil, userErr("user.invalid", "the user token is longer than 16 KiB")
	}
	uk := v.keys.Load()
	tok, err := jwt.ParseSigned(token, uk.algs)
	if err != nil {
		return nil, userErr("user.invalid", "the user token is not a JWT signed with an accepted algorithm: %v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, userErr("user.invalid", "the user token must have one signature")
	}
	kid := tok.Headers[0].KeyID
	var keys []jose.JSONWebKey
	if kid != "" {
		keys = uk.set.Key(kid)
	} else if len(uk.set.Keys) == 1 {
		keys = uk.set.Keys
	}
	if len(keys) != 1 {
		return nil, userErr("user.invalid", "no single key of the issuer's JWKS matches kid %q", kid)
	}
	var std jwt.Claims
	var extra userClaims
	if err := tok.Claims(keys[0].Key, &std, &extra); err != nil {
		return nil, userErr("user.invalid", "the user token's signature does not verify: %v", err)
	}
	if std.Expiry == nil {
		return nil, userErr("user.invalid", "the user token has no exp")
	}
	if std.Subject == "" {
		return nil, userErr("user.invalid", "the user token has no sub")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience}, Time: now}, v.cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, userErr("user.expired", "the user token expired at %s", std.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet) || errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, userErr("user.expired", "the user token is not valid yet")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, userErr("user.audience", "the user token is for %v, not %s", []string(std.Audience), v.cfg.Audience)
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, userErr("user.issuer", "the user token is issued by %q, not %q", std.Issuer, v.cfg.Issuer)
	case err != nil:
		return nil, userErr("user.invalid", "the user token's claims do not validate: %v", err)
	}
	if extra.Act == nil || extra.Act.Sub == "" {
		return nil, userErr("user.delegation", "the user token has no delegation claim (act.sub naming the agent)")
	}
	if extra.Act.Sub != agent.String() {
		return nil, userErr("user.delegation", "the user token is delegated to %s, not to the calling agent %s", text.Cut(extra.Act.Sub, 200), agent)
	}
	scopes := extra.Scp
	if extra.Scope != "" {
		scopes = append(scopes, strings.Fields(extra.Scope)...)
	}
	if scopes == nil {
		scopes = []string{}
	}
	return &User{Issuer: std.Issuer, Subject: std.Subject, Scopes: scopes}, nil
}
