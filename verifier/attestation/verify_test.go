package attestation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/devca"
)

var (
	agentID  = spiffeid.RequireFromString("spiffe://test.example/agent/a")
	brokerID = spiffeid.RequireFromString("spiffe://test.example/broker/b")
	t0       = time.Now().UTC().Add(time.Minute).Truncate(time.Second) // devca.New makes a CA valid from now
)

type fixture struct {
	ca            *devca.CA
	agent, broker *x509svid.SVID
	roots         *Roots
}

func newFixture(t testing.TB) *fixture {
	ca, err := devca.New(spiffeid.RequireTrustDomainFromString("test.example"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ca: ca}
	for _, x := range []struct {
		id  spiffeid.ID
		out **x509svid.SVID
	}{{agentID, &f.agent}, {brokerID, &f.broker}} {
		if *x.out, err = ca.IssueX509SVID(x.id, devca.SVIDOptions{NotBefore: t0.Add(-time.Minute), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	f.roots = FromSource(ca.X509Bundle(), ca.TrustDomain)
	return f
}

// decision is an allow with an attestation committed as the decision path
// does: digest of the bytes as sent, the envelope (canonical once
// marshaled), the chain.
func (f *fixture) decision(t testing.TB) *entry.Decision {
	d := &entry.Decision{Time: entry.FormatTime(t0), CorrelationID: "c-1", Actor: agentID.String(),
		Authn: entry.Authn{Method: "x509-svid"}, Action: "demo.echo", Resource: "demo://x",
		ActionDigest: entry.Digest([]byte("action")), Broker: brokerID.String(), Effect: entry.Allow,
		Policy:  entry.PolicyRef{Hash: entry.Digest([]byte("policy")), Engine: "opa"},
		Receipt: &entry.ReceiptRef{ID: "r-1", KeyID: "k", Audience: brokerID.String(), Expires: entry.FormatTime(t0.Add(5 * time.Minute))}}
	s, err := attest.SignRuntimeContext(context.Background(), f.agent, d.ActionDigest, &attest.RuntimeContext{
		Model: attest.Model{Provider: "anthropic", Name: "claude-sonnet-4"}, Broker: d.Broker,
		Code: attest.Code{Digest: entry.Digest([]byte("code"))}, IssuedAt: entry.FormatTime(t0), ExpiresAt: entry.FormatTime(t0.Add(5 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	d.Attestation = &entry.Attestation{Digest: entry.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64()}
	return roundTrip(t, d).(*entry.Decision)
}

func (f *fixture) result(t testing.TB, d *entry.Decision) *entry.Result {
	st := 0
	r := &entry.Result{Time: entry.FormatTime(t0.Add(time.Second)), CorrelationID: d.CorrelationID, DecisionIndex: 7,
		DecisionLeafHash: base64.StdEncoding.EncodeToString(make([]byte, 32)), ActionDigest: d.ActionDigest, Broker: brokerID.String(),
		ReceiptID: d.Receipt.ID, Outcome: "ok", ExitStatus: &st}
	s, err := attest.SignBrokerResult(context.Background(), f.broker, r.ActionDigest, &attest.BrokerResult{
		Decision: attest.DecisionRef{Index: 7, LeafHash: r.DecisionLeafHash}, ReceiptID: r.ReceiptID, CorrelationID: r.CorrelationID,
		Outcome: "ok", Exit: &attest.Exit{Status: 0}, StartedAt: entry.FormatTime(t0), FinishedAt: entry.FormatTime(t0.Add(time.Second)),
		Outputs: attest.Outputs{Stdout: attest.Output{Digest: entry.Digest(nil)}, Stderr: attest.Output{Digest: entry.Digest(nil)}},
		Sandbox: attest.SandboxApplied{Kind: "landlock", Version: "landlock-abi-7", Capabilities: entry.Digest([]byte("m")), Applied: []string{"fs.read /usr"}}})
	if err != nil {
		t.Fatal(err)
	}
	r.Statement = entry.Attestation{Digest: entry.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64()}
	return roundTrip(t, r).(*entry.Result)
}

// roundTrip commits and parses an entry, as an auditor reads it.
func roundTrip(t testing.TB, e entry.Entry) entry.Entry {
	b, err := entry.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	out, err := entry.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verified is a verifier over the fixture's roots, a decision it verifies
// and what it proved.
func (f *fixture) verified(t *testing.T) (*Verifier, *entry.Decision, *Proven) {
	t.Helper()
	set, _ := f.roots.Set()
	v := NewVerifier(set)
	d := f.decision(t)
	p, err := v.Decision(d)
	if err != nil {
		t.Fatal(err)
	}
	return v, d, p
}

func TestVerifyCommitted(t *testing.T) {
	f := newFixture(t)
	v, d, p := f.verified(t)
	if p.Signer != agentID.String() || p.RuntimeContext.Model.Name != "claude-sonnet-4" || CheckDigest(d.Attestation) != DigestOfSentForm {
		t.Fatalf("%+v", p)
	}
	r := f.result(t, d)
	q, err := v.Result(r)
	if err != nil {
		t.Fatal(err)
	}
	if q.Signer != brokerID.String() || q.BrokerResult.Outcome != "ok" {
		t.Fatalf("%+v", q)
	}
	// Again, from the chain cache.
	if _, err := v.Decision(d); err != nil {
		t.Fatal(err)
	}

	foreign := newFixture(t)
	fset, _ := foreign.roots.Set()
	edit := func(e func(m map[string]any)) *entry.Decision {
		c := *d
		a := *d.Attestation
		var m map[string]any
		json.Unmarshal(a.Envelope, &m)
		e(m)
		a.Envelope, _ = json.Marshal(m)
		c.Attestation = &a
		return &c
	}
	for _, c := range []struct {
		name string
		v    *Verifier
		d    *entry.Decision
		step string
	}{
		{"foreign roots", NewVerifier(fset), d, StepChain},
		{"signature flipped", v, edit(func(m map[string]any) {
			sig := m["signatures"].([]any)[0].(map[string]any)
			b, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
			b[len(b)-1] ^= 1
			sig["sig"] = base64.StdEncoding.EncodeToString(b)
		}), StepSignature},
		{"payloadType", v, edit(func(m map[string]any) { m["payloadType"] = "text/plain" }), StepEnvelope},
		{"keyid", v, edit(func(m map[string]any) { m["signatures"].([]any)[0].(map[string]any)["keyid"] = "sha256:00" }), StepSignature},
		{"another actor", v, func() *entry.Decision { c := *d; c.Actor = brokerID.String(); return &c }(), StepSigner},
		{"another action", v, func() *entry.Decision { c := *d; c.ActionDigest = entry.Digest([]byte("x")); return &c }(), StepSubject},
		{"another broker", v, func() *entry.Decision { c := *d; c.Broker = "spiffe://test.example/broker/z"; return &c }(), StepEntry},
		{"after the SVID expired", v, func() *entry.Decision { c := *d; c.Time = entry.FormatTime(t0.Add(2 * time.Hour)); return &c }(), StepChain},
		{"outside the window", v, func() *entry.Decision { c := *d; c.Time = entry.FormatTime(t0.Add(10 * time.Minute)); return &c }(), StepWindow},
		{"no chain", v, func() *entry.Decision { c := *d; a := *d.Attestation; a.Chain = nil; c.Attestation = &a; return &c }(), StepRefused},
		{"not embedded", v, func() *entry.Decision {
			c := *d
			a := *d.Attestation
			a.Envelope = nil
			c.Attestation = &a
			return &c
		}(), StepNotEmbedded},
	} {
		_, err := c.v.Decision(c.d)
		var ae *Error
		if !errors.As(err, &ae) || ae.Step != c.step {
			t.Errorf("%s: %v, want step %s", c.name, err, c.step)
		}
	}
	for name, edit := range map[string]func(r *entry.Result){
		"receipt":  func(r *entry.Result) { r.ReceiptID = "r-2" },
		"decision": func(r *entry.Result) { r.DecisionIndex = 8 },
		"outcome":  func(r *entry.Result) { r.Outcome = "failed" },
		"exit":     func(r *entry.Result) { s := 3; r.ExitStatus = &s },
	} {
		c := *r
		edit(&c)
		if _, err := v.Result(&c); err == nil || !strings.HasPrefix(err.Error(), StepEntry) {
			t.Errorf("result %s: %v", name, err)
		}
	}
	c := *r
	c.Broker = agentID.String()
	if _, err := v.Result(&c); err == nil || !strings.HasPrefix(err.Error(), StepSigner) {
		t.Errorf("result from another broker: %v", err)
	}

	// The audit's check.
	chk := EntryCheck{V: v}
	if !chk.Applies(d) || !chk.Applies(r) || chk.VerifyEntry(0, nil, d) != nil || chk.VerifyEntry(0, nil, r) != nil {
		t.Fatal("EntryCheck refuses valid entries")
	}
	deny := *d
	deny.Effect, deny.Receipt = entry.Deny, nil
	deny.Attestation = &entry.Attestation{Digest: d.Attestation.Digest, Envelope: d.Attestation.Envelope}
	if chk.Applies(&deny) {
		t.Fatal("a deny recording a refused attestation is not checkable")
	}
	allow := deny
	allow.Effect = entry.Allow
	if !chk.Applies(&allow) || chk.VerifyEntry(0, nil, &allow) == nil {
		t.Fatal("an allow with an unverified attestation passes")
	}
}

func TestRoots(t *testing.T) {
	f := newFixture(t)
	pemRoots, err := ParseRoots(pemOf(f.ca), "")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := f.ca.Bundle().Marshal()
	jsRoots, err := ParseRoots(js, "")
	if err != nil {
		t.Fatal(err)
	}
	if pemRoots.Digest() != f.roots.Digest() || jsRoots.Digest() != f.roots.Digest() || f.roots.Validate() != nil {
		t.Fatal("PEM, SPIFFE bundle and source roots differ")
	}
	if err := f.roots.Within(newFixture(t).roots); err == nil {
		t.Fatal("foreign roots accepted as pinned")
	}
	if _, err := ParseRoots([]byte("not a bundle"), ""); err == nil {
		t.Fatal("parsed garbage")
	}
	if _, err := ParseRoots(pemOf(f.ca), "Not A Domain"); err == nil {
		t.Fatal("accepted a bad trust domain name")
	}
}

func pemOf(ca *devca.CA) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(ca.Certificate().Raw) + "\n-----END CERTIFICATE-----\n")
}

// FuzzParseRoots: arbitrary bytes never panic ParseRoots; what it accepts
// is valid and canonical.
func FuzzParseRoots(f *testing.F) {
	fx := newFixture(f)
	js, _ := fx.ca.Bundle().Marshal()
	f.Add(pemOf(fx.ca), "")
	f.Add(js, "")
	f.Add(pemOf(fx.ca), "example.org")
	f.Fuzz(func(t *testing.T, raw []byte, td string) {
		r, err := ParseRoots(raw, td)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRoots returned invalid roots: %v", err)
		}
	})
}

// The claims an entry commits (what policy evaluated, what readers see)
// must be exactly those the signed predicate gives.
func TestCommittedClaims(t *testing.T) {
	f := newFixture(t)
	v, d, p := f.verified(t)
	r := f.result(t, d)
	q, err := v.Result(r)
	if err != nil {
		t.Fatal(err)
	}
	withClaims := func(c map[string]string) *entry.Decision {
		x := *d
		a := *d.Attestation
		a.Claims = c
		x.Attestation = &a
		return &x
	}
	good := attest.RuntimeContextClaims(agentID, p.RuntimeContext)
	if _, err := v.Decision(withClaims(good)); err != nil {
		t.Fatalf("the derived claims: %v", err)
	}
	changed := func(edit func(m map[string]string)) map[string]string {
		m := maps.Clone(good)
		edit(m)
		return m
	}
	for name, c := range map[string]map[string]string{
		"another model":  changed(func(m map[string]string) { m["model.name"] = "gpt-x" }),
		"a claim added":  changed(func(m map[string]string) { m["sandbox.profile"] = "strict" }),
		"a claim gone":   changed(func(m map[string]string) { delete(m, "code.digest") }),
		"another signer": changed(func(m map[string]string) { m["signer"] = brokerID.String() }),
	} {
		_, err := v.Decision(withClaims(c))
		var ae *Error
		if !errors.As(err, &ae) || ae.Step != StepClaims {
			t.Errorf("decision, %s: %v, want step %s", name, err, StepClaims)
		}
	}

	rgood := attest.BrokerResultClaims(brokerID, q.BrokerResult)
	rc := *r
	rc.Statement.Claims = rgood
	if _, err := v.Result(&rc); err != nil {
		t.Fatalf("the derived result claims: %v", err)
	}
	rc.Statement.Claims = maps.Clone(rgood)
	rc.Statement.Claims["stdout.digest"] = entry.Digest([]byte("forged output"))
	if _, err := v.Result(&rc); err == nil || !strings.HasPrefix(err.Error(), StepClaims) {
		t.Errorf("result with a forged stdout digest claim: %v", err)
	}
}
