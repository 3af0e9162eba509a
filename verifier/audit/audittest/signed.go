package audittest

import (
	"context"
	"encoding/pem"
	"iter"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/devca"
	"github.com/zt-infra/ztlog/verifier/attestation"
)

// PKI is a dev CA for the trust domain dev.ztlog.local with eight agents'
// (Agent(0..7)) and the Broker's ECDSA P-256 X.509-SVIDs, valid for an
// hour from Start, for logs of signed statements.
type PKI struct {
	CA     *devca.CA
	Roots  *attestation.Roots
	Agents []*x509svid.SVID
	Broker *x509svid.SVID
	Start  time.Time
}

// NewPKI makes a PKI whose SVIDs are valid from now (truncated to the
// second) for an hour.
func NewPKI() (*PKI, error) {
	ca, err := devca.New(spiffeid.RequireTrustDomainFromString("dev.ztlog.local"))
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca, Start: time.Now().UTC().Truncate(time.Second)}
	o := devca.SVIDOptions{NotBefore: p.Start.Add(-time.Minute), TTL: time.Hour}
	for a := range 8 {
		s, err := ca.IssueX509SVID(spiffeid.RequireFromString(Agent(a)), o)
		if err != nil {
			return nil, err
		}
		p.Agents = append(p.Agents, s)
	}
	if p.Broker, err = ca.IssueX509SVID(spiffeid.RequireFromString(Broker), o); err != nil {
		return nil, err
	}
	p.Roots = attestation.FromSource(ca.X509Bundle(), ca.TrustDomain)
	return p, nil
}

// WriteRoots writes the CA certificate as PEM (a --spiffe-bundle file).
func (p *PKI) WriteRoots(path string) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CA.Certificate().Raw}), 0o644)
}

// Entries yields n entries, one a millisecond from Start: a policy, the
// agents' registrations, then decisions round-robin over the agents (every
// fourth a deny), each allow followed three entries later by its result;
// every decision carries a runtime-context attestation and every result a
// broker-result statement, committed as the decision path and POST
// /v1/results commit them (digest of the bytes as sent, the envelope, the
// chain, claims).
func (p *PKI) Entries(n uint64) iter.Seq[[]byte] {
	start, agents, broker := p.Start, p.Agents, p.Broker
	ctx := context.Background()
	policyHash := PolicyHash
	return func(yield func([]byte) bool) {
		var i uint64
		at := func() time.Time { return start.Add(time.Duration(i) * time.Millisecond) }
		emit := func(e entry.Entry) bool {
			b, err := entry.Marshal(e)
			if err != nil {
				panic(err)
			}
			i++
			return yield(b)
		}
		if !emit(&entry.Policy{Time: entry.FormatTime(at()), Hash: policyHash, Engine: "opa", Revision: "r1", SourceDigest: entry.Digest([]byte("policy")), LoadedBy: "startup"}) {
			return
		}
		for _, a := range agents {
			if i >= n || !emit(Register(at(), a.ID.String())) {
				return
			}
		}
		type pending struct {
			due   uint64
			index uint64
			leaf  []byte
			d     *entry.Decision
		}
		var queue []pending
		var decisions uint64
		for i < n {
			t := at()
			if len(queue) > 0 && queue[0].due <= i {
				p := queue[0]
				queue = queue[1:]
				r := ResultFor(t, p.index, p.leaf, p.d)
				br := &attest.BrokerResult{
					Decision: attest.DecisionRef{Index: r.DecisionIndex, LeafHash: r.DecisionLeafHash}, ReceiptID: r.ReceiptID, CorrelationID: r.CorrelationID,
					Outcome: "ok", Exit: &attest.Exit{Status: 0}, StartedAt: entry.FormatTime(t.Add(-2 * time.Millisecond)), FinishedAt: entry.FormatTime(t),
					Outputs: attest.Outputs{Stdout: attest.Output{Digest: entry.Digest([]byte("hi\n")), Size: 3}, Stderr: attest.Output{Digest: entry.Digest(nil)}},
					Sandbox: attest.SandboxApplied{Kind: "landlock+bwrap", Version: "landlock-abi-7 bubblewrap-0.8.0", Capabilities: entry.Digest([]byte("manifest")),
						Applied: []string{"fs.read /usr", "fs.read_write /tmp/work", "net.blocked namespace", "limit.timeout 30s", "command /usr/bin/echo"}}}
				s, err := attest.SignBrokerResult(ctx, broker, r.ActionDigest, br)
				if err != nil {
					panic(err)
				}
				r.Statement = entry.Attestation{Digest: entry.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64(),
					Claims: attest.BrokerResultClaims(broker.ID, br)}
				if !emit(r) {
					return
				}
				continue
			}
			decisions++
			agent := agents[int(decisions)%len(agents)]
			var d *entry.Decision
			deny := decisions%4 == 0
			if deny {
				d = Deny(t, decisions, agent.ID.String())
			} else {
				d = Allow(t, decisions, agent.ID.String())
			}
			rc := &attest.RuntimeContext{Model: attest.Model{Provider: "anthropic", Name: "claude-sonnet-4"}, Broker: d.Broker,
				Tool: &attest.Tool{ManifestDigest: entry.Digest([]byte("tools")), Name: "shell"},
				Code: attest.Code{Digest: entry.Digest([]byte("agent code"))}, IssuedAt: entry.FormatTime(t.Add(-time.Second)), ExpiresAt: entry.FormatTime(t.Add(5 * time.Minute))}
			s, err := attest.SignRuntimeContext(ctx, agent, d.ActionDigest, rc)
			if err != nil {
				panic(err)
			}
			d.Attestation = &entry.Attestation{Digest: entry.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64(),
				Claims: attest.RuntimeContextClaims(agent.ID, rc)}
			index := i
			b, err := entry.Marshal(d)
			if err != nil {
				panic(err)
			}
			i++
			if !yield(b) {
				return
			}
			if !deny {
				queue = append(queue, pending{due: i + 3, index: index, leaf: b, d: d})
			}
		}
	}
}
