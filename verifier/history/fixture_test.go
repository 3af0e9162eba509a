package history

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// The test log of the vectors: two agents, a result, an agent
// registration and a policy version. The key is a TEST KEY (a fixed seed),
// never used by a real log.
const (
	testOrigin = "example.test/ztlog-history-vectors"
	agentA     = "spiffe://example.test/agent/a"
	agentB     = "spiffe://example.test/agent/b"
)

type testLog struct {
	origin  string
	skey    string
	vkey    string
	signer  note.Signer
	policy  *trustpolicy.Policy
	polText string
	leaves  [][]byte
	x       *Index
}

// seedReader yields a fixed byte forever: a deterministic test key.
type seedReader byte

func (s seedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s)
	}
	return len(p), nil
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(seedReader(7), origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	polText := "log " + vkey + "\nquorum none\n"
	pol, err := trustpolicy.Parse([]byte(polText))
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{origin: origin, skey: skey, vkey: vkey, signer: s, policy: pol, polText: polText,
		x: New(Options{KeepIndices: true, KeepTree: true})}
}

func (l *testLog) add(t testing.TB, e entry.Entry) uint64 {
	t.Helper()
	leaf, err := entry.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	l.leaves = append(l.leaves, leaf)
	l.x.Apply(leaf)
	return uint64(len(l.leaves) - 1)
}

func digest(b byte) string { return "sha256:" + fmt.Sprintf("%064x", bytes.Repeat([]byte{b}, 32))[:64] }

func decision(actor, corr string, n int, effect entry.Effect) *entry.Decision {
	d := &entry.Decision{Time: fmt.Sprintf("2026-11-21T10:00:%02dZ", n), CorrelationID: corr, Actor: actor,
		Authn: entry.Authn{Method: "x509-svid"}, Action: "demo.echo", Resource: fmt.Sprintf("demo://%d", n),
		ActionDigest: digest(byte(n)), Broker: "spiffe://example.test/broker", Effect: effect,
		Policy: entry.PolicyRef{Hash: digest(0xaa), Engine: "opa", Revision: "r1"}}
	if effect == entry.Deny {
		d.Reasons = []entry.Reason{{Code: "policy.deny", Message: "denied"}}
	}
	return d
}

func result(corr string, n int, decIndex uint64, decLeaf []byte) *entry.Result {
	return &entry.Result{Time: fmt.Sprintf("2026-11-21T10:00:%02dZ", n), CorrelationID: corr, DecisionIndex: decIndex,
		DecisionLeafHash: base64.StdEncoding.EncodeToString(hasher.HashLeaf(decLeaf)), ActionDigest: digest(byte(decIndex)),
		Broker: "spiffe://example.test/broker", ReceiptID: fmt.Sprintf("rcpt-%d", decIndex), Outcome: "ok",
		Statement: entry.Attestation{Digest: digest(0x99)}}
}

// vectorLog is the log of testdata/history.
func vectorLog(t testing.TB) *testLog {
	l := newTestLog(t, testOrigin)
	l.add(t, &entry.Policy{Time: "2026-11-21T09:59:00Z", Hash: digest(0xaa), Engine: "opa", Revision: "r1", SourceDigest: digest(0xbb), LoadedBy: "startup"})
	l.add(t, &entry.Agent{Time: "2026-11-21T09:59:30Z", CorrelationID: "corr-admin", Op: entry.AgentRegister, ID: agentA, By: "spiffe://example.test/admin"})
	d := l.add(t, decision(agentA, "corr-1", 2, entry.Allow))
	l.add(t, decision(agentB, "corr-2", 3, entry.Allow))
	l.add(t, decision(agentB, "corr-1", 4, entry.Deny))
	l.add(t, result("corr-1", 5, d, l.leaves[d]))
	l.add(t, decision(agentA, "corr-3", 6, entry.Deny))
	return l
}

// checkpoint signs the log checkpoint at size n.
func (l *testLog) checkpoint(t testing.TB, n uint64) []byte {
	t.Helper()
	root := l.x.LogRoot(n)
	signed, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// answer is the server's answer for key at the current size.
func (l *testLog) answer(t testing.TB, key string) *Answer {
	t.Helper()
	s := l.x.Snapshot()
	ic, err := l.x.IndexCheckpoint(l.origin, s).Sign(l.signer)
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.x.Answer(key, s, l.checkpoint(t, s.Size), ic, func(idx []uint64) ([][]byte, error) {
		var out [][]byte
		for _, i := range idx {
			out = append(out, l.leaves[i])
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
