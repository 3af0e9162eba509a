package bundle

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// testPKI is the vectors' SPIFFE trust domain: a CA and the agent's and
// broker's X.509-SVIDs. TEST VECTOR KEYS: Ed25519 keys from public seed
// strings (so that certificates and signatures are deterministic); never
// trust them.
type testPKI struct {
	ca            *x509.Certificate
	agent, broker *x509svid.SVID
}

var pkiEpoch = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func vectorPKI(t testing.TB) *testPKI {
	td := spiffeid.RequireTrustDomainFromString("dev.ztlog.local")
	caKey := seedKey("bundle spiffe ca")
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bundle vector SPIFFE CA"},
		NotBefore: pkiEpoch, NotAfter: pkiEpoch.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, URIs: []*url.URL{td.ID().URL()},
	}
	der, err := x509.CreateCertificate(nil, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	svid := func(serial int64, id string) *x509svid.SVID {
		key := seedKey("bundle spiffe " + id)
		sid := spiffeid.RequireFromString(id)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), NotBefore: pkiEpoch, NotAfter: pkiEpoch.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, URIs: []*url.URL{sid.URL()},
		}
		der, err := x509.CreateCertificate(nil, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return &x509svid.SVID{ID: sid, Certificates: []*x509.Certificate{c}, PrivateKey: key}
	}
	return &testPKI{ca: ca, agent: svid(2, audittest.Agent(1)), broker: svid(3, audittest.Broker)}
}

func (p *testPKI) roots() *attestation.Roots {
	return (&attestation.Roots{Domains: []attestation.Domain{{TrustDomain: "dev.ztlog.local", Authorities: [][]byte{p.ca.Raw}}}}).Canonical()
}

func (p *testPKI) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw})
}

// committed is a signed statement as the log commits it: digest of the
// bytes as sent, the envelope (canonicalized by entry.Marshal), the
// chain.
func committed(s *attest.Signed, claims map[string]string) entry.Attestation {
	return entry.Attestation{Digest: entry.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64(), Claims: claims}
}

func (p *testPKI) runtimeContext(t testing.TB, d *entry.Decision, at time.Time) *entry.Attestation {
	rc := &attest.RuntimeContext{
		Model: attest.Model{Provider: "anthropic", Name: "claude-sonnet-4"}, Broker: d.Broker,
		Code:     attest.Code{Digest: entry.Digest([]byte("vector agent code"))},
		IssuedAt: entry.FormatTime(at), ExpiresAt: entry.FormatTime(at.Add(10 * time.Minute)),
	}
	s, err := attest.SignRuntimeContext(context.Background(), p.agent, d.ActionDigest, rc)
	if err != nil {
		t.Fatal(err)
	}
	a := committed(s, attest.RuntimeContextClaims(p.agent.ID, rc))
	return &a
}

func (p *testPKI) brokerResult(t testing.TB, r *entry.Result, started time.Time) entry.Attestation {
	br := &attest.BrokerResult{
		Decision: attest.DecisionRef{Index: r.DecisionIndex, LeafHash: r.DecisionLeafHash}, ReceiptID: r.ReceiptID, CorrelationID: r.CorrelationID,
		Outcome: r.Outcome, Exit: &attest.Exit{Status: *r.ExitStatus},
		StartedAt: entry.FormatTime(started), FinishedAt: entry.FormatTime(started.Add(250 * time.Millisecond)),
		Outputs: attest.Outputs{Stdout: attest.Output{Digest: entry.Digest([]byte("hi\n")), Size: 3}, Stderr: attest.Output{Digest: entry.Digest(nil)}},
		Sandbox: attest.SandboxApplied{Kind: "landlock+bwrap", Version: "landlock-abi-7 bubblewrap-0.8.0", Capabilities: entry.Digest([]byte("vector manifest")),
			Applied: []string{"fs.read /usr", "net.blocked namespace", "command /usr/bin/echo"}},
	}
	s, err := attest.SignBrokerResult(context.Background(), p.broker, r.ActionDigest, br)
	if err != nil {
		t.Fatal(err)
	}
	return committed(s, attest.BrokerResultClaims(p.broker.ID, br))
}
