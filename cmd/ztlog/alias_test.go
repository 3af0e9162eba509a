package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/log/httpread"
)

// TestDevLegacyAlias runs `ztlog dev` and sends the existing ZT JS SDK's
// request unmodified — ZeroTrustClient.decide's {actor, action, resource}
// with actor "hello-world-agent" (the shape of the legacy audit record in
// ../shared/testdata/legacy/denied-audit.json) and the demo agent's
// JWT-SVID as bearer — to POST /actions: it is decided as the demo agent,
// and the committed entry records the alias and the SPIFFE ID it resolved
// to. GET /v1/agents shows the alias.
func TestDevLegacyAlias(t *testing.T) {
	dir := t.TempDir()
	d := devproc.Start(t, ztlogBin, dir, "--decision-timeout", "15s")
	addr := d.Addr
	waitReady(t, "http://"+addr)
	devDir := filepath.Join(dir, "dev")
	jwt, err := os.ReadFile(filepath.Join(devDir, "agent.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(devDir, "bundle.pem"))
	pool.AppendCertsFromPEM(caPEM)
	js := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}} // plain TLS, as Node's fetch
	do := func(method, path, body string, v any) int {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+addr+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(jwt)))
		resp, err := js.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode
	}
	committed := func(index uint64, leafHash string) *entry.Decision {
		t.Helper()
		var er httpread.EntryResponse
		getJSON(t, "http://"+addr+"/v1/entries/"+strconv.FormatUint(index, 10), &er)
		if er.LeafHash != leafHash {
			t.Fatalf("entry %d has leaf hash %s, the answer said %s", index, er.LeafHash, leafHash)
		}
		leaf, err := base64.StdEncoding.DecodeString(er.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		e, err := entry.Parse(leaf)
		if err != nil {
			t.Fatalf("entry %d: %v", index, err)
		}
		dec, ok := e.(*entry.Decision)
		if !ok {
			t.Fatalf("entry %d is a %T", index, e)
		}
		return dec
	}

	// The demo agent's record carries the alias.
	var rec api.Agent
	if st := do("GET", "/v1/agents/dev.ztlog.local/agent/demo", "", &rec); st != 200 {
		t.Fatalf("GET /v1/agents: %d", st)
	}
	if len(rec.Aliases) != 1 || rec.Aliases[0] != "hello-world-agent" {
		t.Errorf("demo agent aliases %q, want [hello-world-agent]", rec.Aliases)
	}

	// Deny: the legacy record's request, now a policy decision about the
	// demo agent (before aliases: identity.actor_mismatch).
	var deny api.LegacyActionResponse
	if st := do("POST", "/actions", `{"actor":"hello-world-agent","action":"aws.ec2.terminate_instances","resource":"i-demo"}`, &deny); st != 403 {
		t.Errorf("deny: status %d, want 403", st)
	}
	if deny.OK {
		t.Error("deny: ok is true")
	}
	if deny.Actor != "hello-world-agent" {
		t.Errorf("deny: actor %q, want hello-world-agent", deny.Actor)
	}
	if deny.Decision != "deny" {
		t.Errorf("deny: decision %q", deny.Decision)
	}
	dd := committed(deny.Audit.Index, deny.Audit.LeafHash)
	if dd.Reasons[0].Code == "identity.actor_mismatch" {
		t.Errorf("deny: committed as an actor mismatch: %s", dd.Reasons[0].Message)
	}
	if dd.Reasons[0].Code != "action.forbidden" {
		t.Errorf("deny: committed reason %s, want action.forbidden", dd.Reasons[0].Code)
	}
	if dd.Actor != devAgentID.String() {
		t.Errorf("deny: committed actor %s, want %s", dd.Actor, devAgentID)
	}
	if dd.ActorAlias != "hello-world-agent" {
		t.Errorf("deny: committed actor_alias %q, want hello-world-agent", dd.ActorAlias)
	}

	// Allow, with a receipt for the demo agent.
	var allow api.LegacyActionResponse
	if st := do("POST", "/actions", `{"actor":"hello-world-agent","action":"demo.echo","resource":"demo://hello"}`, &allow); st != 200 {
		t.Fatalf("allow: status %d (%s)", st, allow.Reason)
	}
	if !allow.OK {
		t.Error("allow: ok is false")
	}
	da := committed(allow.Audit.Index, allow.Audit.LeafHash)
	if da.Actor != devAgentID.String() {
		t.Errorf("allow: committed actor %s, want %s", da.Actor, devAgentID)
	}
	if da.ActorAlias != "hello-world-agent" {
		t.Errorf("allow: committed actor_alias %q", da.ActorAlias)
	}
	var wk struct {
		JWKS jose.JSONWebKeySet `json:"receipt_jwks"`
	}
	getJSON(t, "http://"+addr+"/.well-known/ztlog", &wk)
	claims, err := receipt.Verify(allow.Audit.Receipt, &wk.JWKS, receipt.Expect{Issuer: devOrigin, Audience: devBrokerID.String(), ActionDigest: allow.Audit.ActionDigest, Now: time.Now()})
	if err != nil {
		t.Fatalf("allow: receipt: %v", err)
	}
	if claims.Subject != devAgentID.String() {
		t.Errorf("allow: receipt subject %s, want %s", claims.Subject, devAgentID)
	}

	// Another name stays a committed actor mismatch.
	var other api.LegacyActionResponse
	if st := do("POST", "/actions", `{"actor":"some-other-agent","action":"demo.echo","resource":"demo://hello"}`, &other); st != 403 {
		t.Errorf("other actor: status %d, want 403", st)
	}
	if c := committed(other.Audit.Index, other.Audit.LeafHash); c.Reasons[0].Code != "identity.actor_mismatch" {
		t.Errorf("other actor: committed reason %s, want identity.actor_mismatch", c.Reasons[0].Code)
	}
}
