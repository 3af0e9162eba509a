package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/receipt"
	ztlog "github.com/zt-infra/ztlog/log"
)

// An authenticated agent whose user token has a long "alg" header gets a
// 503 "commit_failed" instead of a committed deny: the gate puts the
// verifier's error text (which quotes the alg) into the reason message
// uncut, the entry refuses a message over 2,048 bytes, and the deny is
// never committed. An agent can so probe with forged user tokens without
// leaving evidence, although the gate promises that every decision about an
// authenticated, well-formed request is committed.
func TestLongUserTokenErrorIsACommittedDeny(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "u1", Algorithm: "ES256"}}}
	users, err := identity.NewUserVerifier(identity.UserConfig{Issuer: "https://idp.example", Keys: jwks, Audience: serverID.String()})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, options{users: users})
	s.register(agentID, "")
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + strings.Repeat("A", 3000) + `"}`))
	tok := hdr + ".e30.AAAA"
	before := s.size()
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"demo://hello"}`, "X-ZT-User-Token", tok)
	if r.status != 403 {
		t.Fatalf("forged user token: got %d %s; want 403 and a committed deny (log size before %d)", r.status, r.body, before)
	}
	var ar api.ActionResponse
	r.json(t, &ar)
	if d := s.committed(ar.Log.Index, ar.Log.LeafHash); d.Effect != entry.Deny || d.Reasons[0].Code != "user.invalid" {
		t.Fatalf("committed %+v", d)
	}
}

// An agent registered with many brokers that names a broker not on its
// list gets a 503 "commit_failed" instead of the committed deny
// broker.not_allowed: the reason message joins every registered broker,
// exceeds the entry's 2,048-byte message limit, and Marshal fails.
func TestBrokerNotAllowedWithManyBrokersIsACommittedDeny(t *testing.T) {
	s := newServer(t, options{})
	var brokers []string
	for i := 0; i < 30; i++ {
		brokers = append(brokers, fmt.Sprintf(`"spiffe://dev.ztlog.local/broker/team-%02d/region-eu-west-1/execution-broker-%02d"`, i, i))
	}
	s.register(agentID, `,"brokers":[`+strings.Join(brokers, ",")+`]`)
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r","broker":"spiffe://dev.ztlog.local/broker/rogue"}`)
	if r.status != 403 {
		t.Fatalf("broker not allowed: got %d %s; want 403 and a committed deny", r.status, r.body)
	}
	var ar api.ActionResponse
	r.json(t, &ar)
	if d := s.committed(ar.Log.Index, ar.Log.LeafHash); d.Effect != entry.Deny || d.Reasons[0].Code != "broker.not_allowed" {
		t.Fatalf("committed %+v", d)
	}
}

// The actor-mismatch reason cuts the body's actor at 200 bytes, inside a
// UTF-8 character; the committed evidence then quotes a broken character
// (\xe2\x82) instead of the characters the caller sent.
func TestActorMismatchMessageIsNotCutInsideACharacter(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	claimed := "a" + strings.Repeat("€", 100) // 1 + 300 bytes; byte 200 is inside a €
	r := s.bearer(agentID).do("POST", "/actions", `{"actor":"`+claimed+`","action":"demo.echo","resource":"r"}`)
	if r.status != 403 {
		t.Fatalf("spoofed actor: %d %s", r.status, r.body)
	}
	var lr api.LegacyActionResponse
	r.json(t, &lr)
	d := s.committed(lr.Audit.Index, lr.Audit.LeafHash)
	if d.Reasons[0].Code != "identity.actor_mismatch" {
		t.Fatalf("committed %+v", d.Reasons)
	}
	if m := d.Reasons[0].Message; strings.Contains(m, `\x`) {
		t.Fatalf("committed reason cuts a character in half: %s", m)
	}
}

// An agent registered with a broker list may hand work only to those
// brokers; the gate checks the list only when the request names a broker.
// A request that names none is decided for the configured DefaultBroker
// without the check, and the allow carries a receipt whose audience is a
// broker the agent is not registered for (POST /actions never names a
// broker, so it always takes this path).
func TestDefaultBrokerIsCheckedAgainstTheAgentsBrokers(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"brokers":["spiffe://dev.ztlog.local/broker/only-this-one"]`)
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"demo://hello"}`)
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status == 200 || ar.Receipt != "" {
		d := s.committed(ar.Log.Index, ar.Log.LeafHash)
		t.Fatalf("agent registered for broker/only-this-one got %d %s with a receipt for %s", r.status, ar.Decision, d.Receipt.Audience)
	}
}

// A receipt lifetime under a second is refused when the gate is built: the
// receipt's expiry is in whole seconds and could equal its issue time.
func TestReceiptLifetimeAtLeastASecond(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Second, time.Nanosecond, 500 * time.Millisecond} {
		_, err := gate.New(gate.Config{Log: &ztlog.Log{}, Auth: &identity.Authenticator{}, PDP: &pdp.PDP{}, Agents: &agents.Registry{}, Keys: &receipt.Keyset{}, ReceiptTTL: ttl})
		if err == nil || !strings.Contains(err.Error(), "at least 1s") {
			t.Errorf("ReceiptTTL %s: New = %v, want a refusal naming the minimum", ttl, err)
		}
	}
}
