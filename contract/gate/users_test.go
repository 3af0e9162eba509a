package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
)

func TestDelegatedUsers(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "u1", Algorithm: "ES256"}}}
	users, err := identity.NewUserVerifier(identity.UserConfig{Issuer: "https://idp.example", Keys: jwks, Audience: serverID.String()})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "u1"}}, nil)
	token := func(mod func(m map[string]any)) string {
		m := map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": serverID.String(), "exp": time.Now().Add(time.Minute).Unix(),
			"scope": "search.deep", "act": map[string]any{"sub": agentID.String()}}
		mod(m)
		tok, err := jwt.Signed(signer).Claims(m).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s := newServer(t, options{users: users})
	s.register(agentID, "")
	agent := s.mtls(agentID)
	ask := func(tok string) (int, api.ActionResponse, *entry.Decision) {
		r := agent.do("POST", "/v1/actions", `{"action":"search.deep","resource":"corpus://all"}`, "X-ZT-User-Token", tok)
		var ar api.ActionResponse
		r.json(t, &ar)
		return r.status, ar, s.committed(ar.Log.Index, ar.Log.LeafHash)
	}
	// Without a user, search.deep is not for this agent.
	if r := agent.do("POST", "/v1/actions", `{"action":"search.deep","resource":"corpus://all"}`); r.status != 403 {
		t.Fatalf("search.deep without a user: %d", r.status)
	}
	// With a user holding the scope: allowed, and the user is committed.
	st, ar, d := ask(token(func(map[string]any) {}))
	if st != 200 || d.User == nil || d.User.Subject != "alice" || d.User.Issuer != "https://idp.example" || len(d.User.Scopes) != 1 {
		t.Fatalf("delegated user: %d %+v %+v", st, ar, d.User)
	}
	for name, tc := range map[string]struct {
		mod  func(m map[string]any)
		code string
	}{
		"delegated to another agent": {func(m map[string]any) { m["act"] = map[string]any{"sub": otherID.String()} }, "user.delegation"},
		"expired":                    {func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }, "user.expired"},
		"another audience":           {func(m map[string]any) { m["aud"] = "spiffe://dev.ztlog.local/other-service" }, "user.audience"},
		"another issuer":             {func(m map[string]any) { m["iss"] = "https://evil.example" }, "user.issuer"},
	} {
		st, ar, d := ask(token(tc.mod))
		if st != 403 || d.Effect != entry.Deny || d.Reasons[0].Code != tc.code || d.User != nil || !strings.Contains(ar.Reasons[0].Message, "user token") {
			t.Errorf("%s: %d %+v", name, st, ar.Reasons)
		}
	}
}

func TestGuardrailFindingsAreCommittedNeverValues(t *testing.T) {
	s := newServer(t, options{guardrails: true})
	s.register(agentID, "")
	agent := s.mtls(agentID)
	secretEmail := "carol.secret@example.org"
	r := agent.do("POST", "/v1/actions", `{"action":"demo.send","resource":"mail://out","args":{"to":"`+secretEmail+`","body":"hello"}}`)
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status != 403 || ar.Reasons[0].Code != "guardrail.finding" {
		t.Fatalf("email in args: %d %s", r.status, r.body)
	}
	leaf := s.entry(ar.Log.Index)
	d := s.committed(ar.Log.Index, ar.Log.LeafHash)
	if len(d.Findings) != 1 || d.Findings[0].Type != "email" || d.Findings[0].Arg != "to" || d.Findings[0].Offset != 0 || d.Findings[0].Length != len(secretEmail) {
		t.Fatalf("findings %+v", d.Findings)
	}
	if strings.Contains(string(leaf), secretEmail) || strings.Contains(string(leaf), "hello") {
		t.Fatal("an argument value was committed")
	}
	wantDigest, _ := api.ArgsDigest([]byte(`{"to":"` + secretEmail + `","body":"hello"}`))
	if d.ArgsDigest != wantDigest {
		t.Fatalf("args digest %s, want %s", d.ArgsDigest, wantDigest)
	}
	// Clean arguments: allowed.
	if r := agent.do("POST", "/v1/actions", `{"action":"demo.send","resource":"mail://out","args":{"body":"hello"}}`); r.status != 200 {
		t.Fatalf("clean args: %d %s", r.status, r.body)
	}
	if s.logs.String() != "" && strings.Contains(s.logs.String(), secretEmail) {
		t.Fatal("an argument value was logged")
	}
}
