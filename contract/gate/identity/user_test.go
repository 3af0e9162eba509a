package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zt-infra/ztlog/contract/gate/identity"
)

type userIssuer struct {
	key *ecdsa.PrivateKey
	kid string
}

func newUserIssuer() *userIssuer {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &userIssuer{key: k, kid: "user-k1"}
}

func (u *userIssuer) jwks() *jose.JSONWebKeySet {
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &u.key.PublicKey, KeyID: u.kid, Algorithm: "ES256", Use: "sig"}}}
}

func (u *userIssuer) token(t *testing.T, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: u.key, KeyID: u.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestUserTokens(t *testing.T) {
	iss := newUserIssuer()
	v, err := identity.NewUserVerifier(identity.UserConfig{Issuer: "https://idp.example", Keys: iss.jwks(), Audience: serverID.String()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	base := func() map[string]any {
		return map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": serverID.String(), "exp": now.Add(time.Minute).Unix(),
			"scope": "search.deep search.fast", "act": map[string]any{"sub": agentID.String()}}
	}
	u, err := v.Verify(iss.token(t, base()), agentID, now)
	if err != nil || u.Subject != "alice" || len(u.Scopes) != 2 || u.Scopes[0] != "search.deep" {
		t.Fatalf("valid token: %+v %v", u, err)
	}
	other := newUserIssuer()
	for name, tc := range map[string]struct {
		token string
		code  string
	}{
		"expired":            {iss.token(t, with(base(), "exp", now.Add(-time.Hour).Unix())), "user.expired"},
		"other audience":     {iss.token(t, with(base(), "aud", "spiffe://elsewhere/svc")), "user.audience"},
		"other issuer":       {iss.token(t, with(base(), "iss", "https://evil.example")), "user.issuer"},
		"delegated to other": {iss.token(t, with(base(), "act", map[string]any{"sub": "spiffe://test.ztlog.local/agent/b"})), "user.delegation"},
		"no delegation":      {iss.token(t, with(base(), "act", nil)), "user.delegation"},
		"no exp":             {iss.token(t, with(base(), "exp", nil)), "user.invalid"},
		"foreign key":        {other.token(t, base()), "user.invalid"},
		"garbage":            {"a.b.c", "user.invalid"},
	} {
		_, err := v.Verify(tc.token, agentID, now)
		var ue *identity.UserError
		if !errors.As(err, &ue) || ue.Code != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	if _, err := identity.NewUserVerifier(identity.UserConfig{Issuer: "x", Keys: iss.jwks()}); err == nil {
		t.Fatal("a user verifier without audience was built")
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	return m
}

// The issuer rotates its signing key: tokens of the new key verify once the
// new JWKS is set, the old key's stop; a bad JWKS is refused and the keys in
// use stay.
func TestUserKeyRotation(t *testing.T) {
	old := newUserIssuer()
	v, err := identity.NewUserVerifier(identity.UserConfig{Issuer: "https://idp.example", Keys: old.jwks(), Audience: serverID.String()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": serverID.String(), "exp": now.Add(time.Minute).Unix(),
		"act": map[string]any{"sub": agentID.String()}}
	next := newUserIssuer()
	next.kid = "user-k2"
	if _, err := v.Verify(next.token(t, claims), agentID, now); err == nil {
		t.Fatal("a token of a key not yet published verified")
	}

	priv := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: next.key, KeyID: next.kid, Algorithm: "ES256"}}}
	for name, bad := range map[string]*jose.JSONWebKeySet{"empty": {}, "nil": nil, "private key": priv} {
		if err := v.SetKeys(bad); err == nil {
			t.Errorf("%s JWKS accepted", name)
		}
	}
	if _, err := v.Verify(old.token(t, claims), agentID, now); err != nil {
		t.Fatalf("after refused JWKS updates the old key no longer verifies: %v", err)
	}

	if err := v.SetKeys(next.jwks()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(next.token(t, claims), agentID, now); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if _, err := v.Verify(old.token(t, claims), agentID, now); err == nil {
		t.Fatal("the rotated-out key still verifies")
	}
}
