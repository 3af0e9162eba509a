package gate_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/devca"
)

// attested builds POST /v1/actions bodies with a runtime-context
// attestation signed by the agent's own SVID.
type attested struct {
	t        *testing.T
	s        *server
	svid     *x509svid.SVID
	manifest *capability.Manifest
}

func newAttested(t *testing.T, s *server, m *capability.Manifest) *attested {
	svid, err := s.ca.IssueX509SVID(agentID, devca.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &attested{t: t, s: s, svid: svid, manifest: m}
}

func (a *attested) runtime(now time.Time) *attest.RuntimeContext {
	caps, _ := a.manifest.Digest()
	return &attest.RuntimeContext{
		Model:     attest.Model{Provider: "anthropic", Name: "claude-sonnet-4", Version: "2025-05-14"},
		Tool:      &attest.Tool{ManifestDigest: "sha256:" + strings.Repeat("7f", 32), Name: "shell", Version: "1.0"},
		Sandbox:   &attest.Sandbox{Profile: a.manifest.Profile, Capabilities: caps},
		Broker:    brokerID.String(),
		Code:      attest.Code{Digest: "sha256:" + strings.Repeat("c0", 32)},
		IssuedAt:  attest.FormatTime(now),
		ExpiresAt: attest.FormatTime(now.Add(5 * time.Minute)),
	}
}

func (a *attested) digest(action string) string {
	caps, _ := a.manifest.Digest()
	d, err := entry.ActionDigest(entry.Action{Actor: agentID.String(), Action: action, Resource: "demo://hello",
		Broker: brokerID.String(), CapabilitiesDigest: caps})
	if err != nil {
		a.t.Fatal(err)
	}
	return d
}

// body is the request for action, with the attestation p signed by signer
// about the action digest subject ("" = the request's own).
func (a *attested) body(action string, p *attest.RuntimeContext, signer *x509svid.SVID, subject string, withChain bool) string {
	if subject == "" {
		subject = a.digest(action)
	}
	s, err := attest.SignRuntimeContext(context.Background(), signer, subject, p)
	if err != nil {
		a.t.Fatal(err)
	}
	caps, _ := json.Marshal(a.manifest)
	body := `{"action":"` + action + `","resource":"demo://hello","broker":"` + brokerID.String() + `","capabilities":` + string(caps) +
		`,"attestation":` + string(s.Envelope)
	if withChain {
		chain, _ := json.Marshal(s.ChainBase64())
		body += `,"attestation_chain":` + string(chain)
	}
	return body + "}"
}

func (a *attested) decide(body string) (int, *api.ActionResponse, *entry.Decision) {
	a.t.Helper()
	r := a.s.clientWith(a.svid, "").do("POST", "/v1/actions", body)
	var resp api.ActionResponse
	if r.status != 200 && r.status != 403 {
		a.t.Fatalf("decide: %d %s", r.status, r.body)
	}
	r.json(a.t, &resp)
	return r.status, &resp, a.s.committed(resp.Log.Index, resp.Log.LeafHash)
}

// TestAttestedDecision: a verified runtime attestation reaches policy and
// the log — claims, chain, envelope, the manifest's digest in the action
// digest — and the receipt names that action digest.
func TestAttestedDecision(t *testing.T) {
	for _, engine := range []string{"opa", "cedar"} {
		t.Run(engine, func(t *testing.T) {
			s := newServer(t, options{policyEngine: engine})
			s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
			a := newAttested(t, s, capability.Strict(t.TempDir(), "echo"))
			for _, withChain := range []bool{true, false} {
				status, resp, d := a.decide(a.body("shell.run", a.runtime(time.Now()), a.svid, "", withChain))
				if status != 200 || d.Effect != entry.Allow {
					t.Fatalf("chain %v: %d %+v", withChain, status, resp.Reasons)
				}
				caps, _ := a.manifest.Digest()
				if d.ActionDigest != a.digest("shell.run") || d.CapabilitiesDigest != caps {
					t.Fatalf("action digest %s caps %s", d.ActionDigest, d.CapabilitiesDigest)
				}
				at := d.Attestation
				if at == nil || len(at.Envelope) == 0 || len(at.Chain) == 0 || at.Claims["signer"] != agentID.String() ||
					at.Claims["model.name"] != "claude-sonnet-4" || at.Claims["sandbox.profile"] != "strict" || at.Claims["sandbox.capabilities"] != caps {
					t.Fatalf("committed attestation %+v", at)
				}
				r, err := receipt.Parse(resp.Receipt)
				if err != nil || r.Claims.ActionDigest != d.ActionDigest {
					t.Fatalf("receipt %v %+v", err, r)
				}
			}
		})
	}
}

// TestAttestationRulesRunOnRealAttestations: the example policy's rules
// over models and sandbox profiles decide on verified claims, in both
// engines.
func TestAttestationRulesRunOnRealAttestations(t *testing.T) {
	for _, engine := range []string{"opa", "cedar"} {
		t.Run(engine, func(t *testing.T) {
			s := newServer(t, options{policyEngine: engine})
			s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
			strict := newAttested(t, s, capability.Strict(t.TempDir(), "echo"))

			// A model not on the allow list.
			p := strict.runtime(time.Now())
			p.Model.Name = "unvetted-model"
			if _, resp, d := strict.decide(strict.body("demo.echo", p, strict.svid, "", true)); d.Effect != entry.Deny || !hasReason(resp, "attestation.model_not_allowed") {
				t.Fatalf("unvetted model: %+v", resp.Reasons)
			}

			// A shell action with a sandbox that is not strict.
			loose := capability.Strict(t.TempDir(), "echo")
			loose.Profile, loose.Network = "open", capability.Network{Mode: capability.NetUnrestricted}
			open := newAttested(t, s, loose)
			if _, resp, d := open.decide(open.body("shell.run", open.runtime(time.Now()), open.svid, "", true)); d.Effect != entry.Deny || !hasReason(resp, "sandbox.not_strict") {
				t.Fatalf("loose sandbox: %+v", resp.Reasons)
			}
			// The same sandbox is fine for a demo action.
			if status, resp, _ := open.decide(open.body("demo.echo", open.runtime(time.Now()), open.svid, "", true)); status != 200 {
				t.Fatalf("demo action, loose sandbox: %d %+v", status, resp.Reasons)
			}
		})
	}
}

func hasReason(resp *api.ActionResponse, code string) bool {
	for _, r := range resp.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// TestInvalidAttestationIsACommittedDeny: every way an attestation can be
// wrong is a deny, committed, naming why.
func TestInvalidAttestationIsACommittedDeny(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
	a := newAttested(t, s, capability.Strict(t.TempDir(), "echo"))
	other, _ := s.ca.IssueX509SVID(otherID, devca.SVIDOptions{})
	expiredSVID, _ := s.ca.IssueX509SVID(agentID, devca.SVIDOptions{NotBefore: time.Now().Add(-2 * time.Hour), TTL: time.Hour})
	foreignCA, _ := devca.New(td)
	foreign, _ := foreignCA.IssueX509SVID(agentID, devca.SVIDOptions{})
	now := time.Now()
	edit := func(f func(p *attest.RuntimeContext)) *attest.RuntimeContext {
		p := a.runtime(now)
		f(p)
		return p
	}
	cases := []struct {
		name, body, want string
	}{
		{"signed by another agent", a.body("demo.echo", a.runtime(now), other, "", true), "signed by"},
		{"about another action", a.body("demo.echo", a.runtime(now), a.svid, a.digest("demo.other"), true), "another action"},
		{"expired", a.body("demo.echo", edit(func(p *attest.RuntimeContext) {
			p.IssuedAt, p.ExpiresAt = attest.FormatTime(now.Add(-20*time.Minute)), attest.FormatTime(now.Add(-10*time.Minute))
		}), a.svid, "", true), "expired"},
		{"signer SVID expired", a.body("demo.echo", a.runtime(now), expiredSVID, "", true), "chain"},
		{"untrusted CA", a.body("demo.echo", a.runtime(now), foreign, "", true), "chain"},
		{"other broker", a.body("demo.echo", edit(func(p *attest.RuntimeContext) { p.Broker = "spiffe://dev.ztlog.local/broker/other" }), a.svid, "", true), "names broker"},
		{"other sandbox", a.body("demo.echo", edit(func(p *attest.RuntimeContext) { p.Sandbox.Capabilities = "sha256:" + strings.Repeat("00", 32) }), a.svid, "", true), "sandbox capabilities"},
		{"tampered", strings.Replace(a.body("demo.echo", a.runtime(now), a.svid, "", true), `"sig":"`, `"sig":"AAAA`, 1), "signature"},
	}
	for _, c := range cases {
		status, resp, d := a.decide(c.body)
		if status != 403 || d.Effect != entry.Deny || len(d.Reasons) == 0 || d.Reasons[0].Code != "attestation.invalid" || !strings.Contains(d.Reasons[0].Message, c.want) {
			t.Errorf("%s: %d, committed %s %+v; want attestation.invalid naming %q", c.name, status, d.Effect, d.Reasons, c.want)
		}
		if resp.Receipt != "" || d.Attestation == nil || d.Attestation.Digest == "" || d.Attestation.Claims != nil {
			t.Errorf("%s: receipt %q, attestation %+v", c.name, resp.Receipt, d.Attestation)
		}
	}
	// A JWT-SVID caller has no mutual-TLS chain to fall back on.
	body := a.body("demo.echo", a.runtime(now), a.svid, "", false)
	r := s.bearer(agentID).do("POST", "/v1/actions", body)
	var resp api.ActionResponse
	r.json(t, &resp)
	if r.status != 403 || !hasReason(&resp, "attestation.invalid") {
		t.Fatalf("JWT caller without a chain: %d %+v", r.status, resp.Reasons)
	}
}

// TestExpectedPolicyHash: an agent that attests to expecting another policy
// version is denied; expecting the one in force, allowed.
func TestExpectedPolicyHash(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
	a := newAttested(t, s, capability.Strict(t.TempDir(), "echo"))
	p := a.runtime(time.Now())
	p.PolicyHash = "sha256:" + strings.Repeat("99", 32)
	if _, resp, d := a.decide(a.body("demo.echo", p, a.svid, "", true)); d.Effect != entry.Deny || !hasReason(resp, "attestation.policy_mismatch") {
		t.Fatalf("other policy: %+v", resp.Reasons)
	}
	p.PolicyHash = s.pdp.Current().Version().Hash
	if status, resp, _ := a.decide(a.body("demo.echo", p, a.svid, "", true)); status != 200 {
		t.Fatalf("policy in force: %d %+v", status, resp.Reasons)
	}
}

// The attested model's provider and version and the tool's name reach
// policy from a real, verified attestation (a policy that requires them).
func TestAttestedModelProviderVersionAndToolReachPolicy(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte(`package ztlog.authz
import rego.v1
default allow := false
allow if {
	input.attestation.verified
	input.attestation.model_provider == "anthropic"
	input.attestation.model_version == "2025-05-14"
	input.attestation.tool_name == "shell"
}
`), 0o644)
	s := newServer(t, options{policyDir: dir})
	s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
	a := newAttested(t, s, capability.Strict(t.TempDir(), "echo"))
	if status, resp, d := a.decide(a.body("demo.echo", a.runtime(time.Now()), a.svid, "", true)); status != 200 || d.Effect != entry.Allow {
		t.Fatalf("attested anthropic/2025-05-14 with tool shell: %d %+v", status, resp.Reasons)
	}
	p := a.runtime(time.Now())
	p.Model.Version = "2024-01-01"
	if _, resp, d := a.decide(a.body("demo.echo", p, a.svid, "", true)); d.Effect != entry.Deny {
		t.Fatalf("another model version allowed: %+v", resp.Reasons)
	}
}

// TestAttestationAfterCARotation: once the service's trust bundle is
// rotated to another CA, an attestation whose signer chain verified (and
// was remembered) under the old one is refused: a committed deny. The
// agent's mutual-TLS connection from before the rotation is kept (the
// request goes to the handler with its verified connection state).
func TestAttestationAfterCARotation(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
	a := newAttested(t, s, capability.Strict(t.TempDir(), "echo"))
	body := a.body("shell.run", a.runtime(time.Now()), a.svid, "", true)
	state := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: a.svid.Certificates}
	decide := func() (int, *api.ActionResponse) {
		w := inProcess(s.svc.Handler(), state, "/v1/actions", body)
		var resp api.ActionResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer %d is not JSON: %s", w.Code, w.Body.Bytes())
		}
		return w.Code, &resp
	}
	if status, resp := decide(); status != http.StatusOK {
		t.Fatalf("before the rotation: %d %+v", status, resp.Reasons)
	}
	if status, resp := decide(); status != http.StatusOK {
		t.Fatalf("again before the rotation: %d %+v", status, resp.Reasons)
	}

	ca2, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca2.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.idDir, "bundle.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.src.(interface{ Reload() error }).Reload(); err != nil {
		t.Fatal(err)
	}
	status, resp := decide()
	if status != http.StatusForbidden {
		t.Errorf("after the rotation: HTTP %d, want 403", status)
	}
	if !hasReason(resp, "attestation.invalid") {
		t.Errorf("after the rotation: reasons %+v, want attestation.invalid", resp.Reasons)
	}
}
