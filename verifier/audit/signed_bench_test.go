package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"iter"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract"
	"github.com/zt-infra/ztlog/contract/identity/devca"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// signedLog is a log whose decisions carry real runtime-context
// attestations and whose results carry real broker-result statements,
// DSSE-signed with ECDSA P-256 X.509-SVIDs from a dev CA, committed as the
// decision path and POST /v1/results commit them.
type signedLog struct {
	dir     string
	roots   *attestation.Roots
	entries uint64
	signed  uint64 // entries carrying a statement
}

var (
	signedOnce  sync.Once
	signedBench *signedLog
	signedErr   error
)

// signedScenario yields n entries: a policy, the agents' registrations,
// then decisions (every fourth a deny), each allow followed three entries
// later by its result; every decision and result is signed.
func signedScenario(n uint64, start time.Time, agents []*x509svid.SVID, broker *x509svid.SVID) iter.Seq[[]byte] {
	ctx := context.Background()
	policyHash := audittest.PolicyHash
	return func(yield func([]byte) bool) {
		var i uint64
		at := func() time.Time { return start.Add(time.Duration(i) * time.Millisecond) }
		emit := func(e contract.Entry) bool {
			b, err := contract.Marshal(e)
			if err != nil {
				panic(err)
			}
			i++
			return yield(b)
		}
		if !emit(&contract.Policy{Time: contract.FormatTime(at()), Hash: policyHash, Engine: "opa", Revision: "r1", SourceDigest: contract.Digest([]byte("policy")), LoadedBy: "startup"}) {
			return
		}
		for _, a := range agents {
			if i >= n || !emit(audittest.Register(at(), a.ID.String())) {
				return
			}
		}
		type pending struct {
			due   uint64
			index uint64
			leaf  []byte
			d     *contract.Decision
		}
		var queue []pending
		var decisions uint64
		for i < n {
			t := at()
			if len(queue) > 0 && queue[0].due <= i {
				p := queue[0]
				queue = queue[1:]
				r := audittest.ResultFor(t, p.index, p.leaf, p.d)
				s, err := attest.SignBrokerResult(ctx, broker, r.ActionDigest, &attest.BrokerResult{
					Decision: attest.DecisionRef{Index: r.DecisionIndex, LeafHash: r.DecisionLeafHash}, ReceiptID: r.ReceiptID, CorrelationID: r.CorrelationID,
					Outcome: "ok", Exit: &attest.Exit{Status: 0}, StartedAt: contract.FormatTime(t.Add(-2 * time.Millisecond)), FinishedAt: contract.FormatTime(t),
					Outputs: attest.Outputs{Stdout: attest.Output{Digest: contract.Digest([]byte("hi\n")), Size: 3}, Stderr: attest.Output{Digest: contract.Digest(nil)}},
					Sandbox: attest.SandboxApplied{Kind: "landlock+bwrap", Version: "landlock-abi-7 bubblewrap-0.8.0", Capabilities: contract.Digest([]byte("manifest")),
						Applied: []string{"fs.read /usr", "fs.read_write /tmp/work", "net.blocked namespace", "limit.timeout 30s", "command /usr/bin/echo"}}})
				if err != nil {
					panic(err)
				}
				r.Statement = contract.Attestation{Digest: contract.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64(),
					Claims: map[string]string{"signer": broker.ID.String(), "sandbox.kind": "landlock+bwrap", "stdout.digest": contract.Digest([]byte("hi\n"))}}
				if !emit(r) {
					return
				}
				continue
			}
			decisions++
			agent := agents[int(decisions)%len(agents)]
			var d *contract.Decision
			deny := decisions%4 == 0
			if deny {
				d = audittest.Deny(t, decisions, agent.ID.String())
			} else {
				d = audittest.Allow(t, decisions, agent.ID.String())
			}
			rc := &attest.RuntimeContext{Model: attest.Model{Provider: "anthropic", Name: "claude-sonnet-4"}, Broker: d.Broker,
				Tool: &attest.Tool{ManifestDigest: contract.Digest([]byte("tools")), Name: "shell"},
				Code: attest.Code{Digest: contract.Digest([]byte("agent code"))}, IssuedAt: contract.FormatTime(t.Add(-time.Second)), ExpiresAt: contract.FormatTime(t.Add(5 * time.Minute))}
			s, err := attest.SignRuntimeContext(ctx, agent, d.ActionDigest, rc)
			if err != nil {
				panic(err)
			}
			d.Attestation = &contract.Attestation{Digest: contract.Digest(s.Envelope), Envelope: s.Envelope, Chain: s.ChainBase64(),
				Claims: map[string]string{"signer": d.Actor, "model.provider": "anthropic", "model.name": "claude-sonnet-4", "code.digest": rc.Code.Digest}}
			index := i
			b, err := contract.Marshal(d)
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

// signedPKI is a dev CA with eight agents' and a broker's ECDSA P-256
// X.509-SVIDs valid for an hour from start.
type signedPKI struct {
	roots  *attestation.Roots
	agents []*x509svid.SVID
	broker *x509svid.SVID
	start  time.Time
}

func newSignedPKI(t testing.TB) *signedPKI {
	ca, err := devca.New(spiffeid.RequireTrustDomainFromString("dev.ztlog.local"))
	if err != nil {
		t.Fatal(err)
	}
	p := &signedPKI{start: time.Now().UTC().Truncate(time.Second)}
	o := devca.SVIDOptions{NotBefore: p.start.Add(-time.Minute), TTL: time.Hour}
	for a := range 8 {
		s, err := ca.IssueX509SVID(spiffeid.RequireFromString(audittest.Agent(a)), o)
		if err != nil {
			t.Fatal(err)
		}
		p.agents = append(p.agents, s)
	}
	if p.broker, err = ca.IssueX509SVID(spiffeid.RequireFromString(audittest.Broker), o); err != nil {
		t.Fatal(err)
	}
	p.roots = attestation.FromSource(ca.X509Bundle(), ca.TrustDomain)
	return p
}

func (p *signedPKI) check(t testing.TB) EntryVerifier {
	set, err := p.roots.Set()
	if err != nil {
		t.Fatal(err)
	}
	return attestation.EntryCheck{V: attestation.NewVerifier(set)}
}

// benchSignedLog writes the signed benchmark log once per process.
func benchSignedLog(b *testing.B, n uint64) (*signedLog, *signedPKI) {
	signedOnce.Do(func() {
		pki := newSignedPKI(b)
		dir, err := os.MkdirTemp("", "ztlog-audit-signed-bench")
		if err != nil {
			signedErr = err
			return
		}
		benchDirs[^uint64(0)] = dir
		var signed uint64
		seq := signedScenario(n, pki.start, pki.agents, pki.broker)
		counted := func(yield func([]byte) bool) {
			for e := range seq {
				if len(e) > 1500 {
					signed++
				}
				if !yield(e) {
					return
				}
			}
		}
		_, k := benchLog(b, benchEntriesParse)
		if _, err := audittest.WriteLog(dir, k.signer, counted); err != nil {
			signedErr = err
			return
		}
		signedBench = &signedLog{dir: dir, roots: pki.roots, entries: n, signed: signed}
		signedBenchPKI = pki
	})
	if signedErr != nil {
		b.Fatal(signedErr)
	}
	return signedBench, signedBenchPKI
}

var signedBenchPKI *signedPKI

// ecdsaRate measures, in this run, the raw ECDSA P-256 verify rate across
// all cores (SHA-256 of a statement-sized message, then the verification:
// what one DSSE statement costs).
func ecdsaRate(b *testing.B) float64 {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	msg := make([]byte, 1200)
	rand.Read(msg)
	h := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, key, h[:])
	procs := runtime.GOMAXPROCS(0)
	const n = 20_000
	var wg sync.WaitGroup
	start := time.Now()
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / procs {
				h := sha256.Sum256(msg)
				if !ecdsa.VerifyASN1(&key.PublicKey, h[:], sig) {
					panic("ecdsa verify")
				}
			}
		}()
	}
	wg.Wait()
	return float64(n/procs*procs) / time.Since(start).Seconds()
}
