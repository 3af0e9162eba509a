package results_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
)

var otherBroker = spiffeid.RequireFromPath(contracttest.TD, "/broker/other")

type fixture struct {
	t      *testing.T
	s      *contracttest.Server
	agent  *x509svid.SVID
	broker *x509svid.SVID
}

func newFixture(t *testing.T) *fixture {
	s := contracttest.Start(t, contracttest.Options{})
	return &fixture{t: t, s: s, agent: s.SVID(contracttest.AgentID), broker: s.SVID(contracttest.BrokerID)}
}

func (f *fixture) post(svid *x509svid.SVID, path, body string) (int, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.s.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.s.Client(svid).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// decide asks for action as the agent and returns the answer.
func (f *fixture) decide(action string) *api.ActionResponse {
	f.t.Helper()
	status, b := f.post(f.agent, "/v1/actions", `{"action":"`+action+`","resource":"demo://hello","broker":"`+contracttest.BrokerID.String()+`"}`)
	var r api.ActionResponse
	if err := json.Unmarshal(b, &r); err != nil || (status != 200 && status != 403) {
		f.t.Fatalf("decide: %d %s", status, b)
	}
	return &r
}

// result is a broker-result predicate about the decision d.
func (f *fixture) result(d *api.ActionResponse) *attest.BrokerResult {
	f.t.Helper()
	rid := "none"
	if d.Receipt != "" {
		r, err := receipt.Parse(d.Receipt)
		if err != nil {
			f.t.Fatal(err)
		}
		rid = r.Claims.ID
	}
	empty := attest.Output{Digest: attest.Digest(nil)}
	now := time.Now()
	return &attest.BrokerResult{
		Decision: attest.DecisionRef{Index: d.Log.Index, LeafHash: d.Log.LeafHash}, ReceiptID: rid, CorrelationID: d.CorrelationID,
		Outcome: attest.OutcomeOK, Exit: &attest.Exit{Status: 0}, StartedAt: attest.FormatTime(now), FinishedAt: attest.FormatTime(now),
		Outputs: attest.Outputs{Stdout: attest.Output{Digest: attest.Digest([]byte("hi\n")), Size: 3}, Stderr: empty},
		Sandbox: attest.SandboxApplied{Kind: "landlock+bwrap", Version: "landlock-abi-7 bubblewrap-0.8.0", Capabilities: "sha256:" + strings.Repeat("0c", 32), Applied: []string{"command /usr/bin/echo"}},
	}
}

func (f *fixture) sign(svid *x509svid.SVID, subject string, p *attest.BrokerResult) *attest.Signed {
	f.t.Helper()
	s, err := attest.SignBrokerResult(context.Background(), svid, subject, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func TestResultIsCommittedOnce(t *testing.T) {
	f := newFixture(t)
	d := f.decide("demo.echo")
	if d.Decision != "allow" {
		t.Fatalf("decision %+v", d)
	}
	signed := f.sign(f.broker, d.ActionDigest, f.result(d))
	status, b := f.post(f.broker, "/v1/results", string(broker.ResultBody(signed)))
	if status != 200 {
		t.Fatalf("post: %d %s", status, b)
	}
	var res api.ResultResponse
	json.Unmarshal(b, &res)
	if res.DecisionIndex != d.Log.Index || res.Outcome != "ok" || res.CorrelationID != d.CorrelationID || res.Log.Index <= d.Log.Index {
		t.Fatalf("answer %+v", res)
	}
	e, err := entry.Parse(f.s.Entry(res.Log.Index))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := e.(*entry.Result)
	if !ok {
		t.Fatalf("entry %d is a %T", res.Log.Index, e)
	}
	if r.DecisionIndex != d.Log.Index || r.DecisionLeafHash != d.Log.LeafHash || r.ActionDigest != d.ActionDigest ||
		r.Broker != contracttest.BrokerID.String() || r.Outcome != "ok" || r.ExitStatus == nil || *r.ExitStatus != 0 ||
		r.CorrelationID != d.CorrelationID || !bytes.Equal(r.Statement.Envelope, canonical(t, signed.Envelope)) || len(r.Statement.Chain) != len(signed.Chain) ||
		r.Statement.Digest != attest.Digest(signed.Envelope) || r.Statement.Claims["stdout.digest"] != attest.Digest([]byte("hi\n")) || r.Statement.Claims["sandbox.kind"] != "landlock+bwrap" {
		t.Fatalf("committed result %+v", r)
	}
	// The committed statement still verifies, from the entry alone.
	chain, _ := attest.DecodeChain(r.Statement.Chain)
	if _, _, err := attest.VerifyBrokerResult(context.Background(), r.Statement.Envelope, chain, f.s.Src,
		attest.Expect{Now: time.Now(), Signer: contracttest.BrokerID, ActionDigest: r.ActionDigest}); err != nil {
		t.Fatalf("committed statement: %v", err)
	}

	// The same statement again: the same entry. Another one: 409.
	size := f.s.Size()
	status, b = f.post(f.broker, "/v1/results", string(broker.ResultBody(signed)))
	var again api.ResultResponse
	json.Unmarshal(b, &again)
	if status != 200 || again.Log != res.Log {
		t.Fatalf("same statement again: %d %s", status, b)
	}
	second := f.result(d)
	second.Outcome, second.Exit = attest.OutcomeFailed, &attest.Exit{Status: 3}
	if status, b = f.post(f.broker, "/v1/results", string(broker.ResultBody(f.sign(f.broker, d.ActionDigest, second)))); status != 409 || !strings.Contains(string(b), "result_exists") {
		t.Fatalf("second result: %d %s", status, b)
	}
	// And after a restart, from the log.
	f.s.Restart()
	if f.s.Results.Len() != 1 {
		t.Fatalf("rebuilt %d results", f.s.Results.Len())
	}
	if status, b = f.post(f.broker, "/v1/results", string(broker.ResultBody(f.sign(f.broker, d.ActionDigest, second)))); status != 409 {
		t.Fatalf("second result after restart: %d %s", status, b)
	}
	status, b = f.post(f.broker, "/v1/results", string(broker.ResultBody(signed)))
	json.Unmarshal(b, &again)
	if status != 200 || again.Log != res.Log {
		t.Fatalf("same statement after restart: %d %s", status, b)
	}
	if f.s.Size() != size {
		t.Fatalf("log grew from %d to %d with nothing new to commit", size, f.s.Size())
	}
}

// TestRefusals: each way a result can be wrong is refused and commits
// nothing.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	allow := f.decide("demo.echo")
	deny := f.decide("aws.ec2.terminate_instances")
	if allow.Decision != "allow" || deny.Decision != "deny" {
		t.Fatalf("setup: %s %s", allow.Decision, deny.Decision)
	}
	other := f.s.SVID(otherBroker)
	good := f.result(allow)
	edit := func(fn func(p *attest.BrokerResult)) *attest.BrokerResult {
		p := f.result(allow)
		fn(p)
		return p
	}
	tampered := broker.ResultBody(f.sign(f.broker, allow.ActionDigest, good))
	tampered = bytes.Replace(tampered, []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1)
	cases := []struct {
		name   string
		poster *x509svid.SVID
		body   string
		status int
		code   string
	}{
		{"anonymous", nil, string(broker.ResultBody(f.sign(f.broker, allow.ActionDigest, good))), 401, "unauthenticated"},
		{"malformed", f.broker, `{"statement":{}}`, 400, ""},
		{"tampered", f.broker, string(tampered), 422, "statement_invalid"},
		{"signer is not the caller", f.agent, string(broker.ResultBody(f.sign(f.broker, allow.ActionDigest, good))), 403, "signer_not_caller"},
		{"not the receipt's audience", other, string(broker.ResultBody(f.sign(other, allow.ActionDigest, good))), 403, "not_receipt_audience"},
		{"no such decision", f.broker, string(broker.ResultBody(f.sign(f.broker, allow.ActionDigest, edit(func(p *attest.BrokerResult) { p.Decision.Index = 1 << 40 })))), 404, "decision_not_found"},
		{"a deny", f.broker, string(broker.ResultBody(f.sign(f.broker, deny.ActionDigest, f.result(deny)))), 422, "decision_mismatch"},
		{"other leaf hash", f.broker, string(broker.ResultBody(f.sign(f.broker, allow.ActionDigest, edit(func(p *attest.BrokerResult) {
			p.Decision.LeafHash = base64.StdEncoding.EncodeToString(make([]byte, 32))
		})))), 422, "decision_mismatch"},
		{"other receipt", f.broker, string(broker.ResultBody(f.sign(f.broker, allow.ActionDigest, edit(func(p *attest.BrokerResult) { p.ReceiptID = "r-other" })))), 422, "decision_mismatch"},
		{"other action", f.broker, string(broker.ResultBody(f.sign(f.broker, "sha256:"+strings.Repeat("ab", 32), good))), 422, "decision_mismatch"},
		{"not a decision", f.broker, string(broker.ResultBody(f.sign(f.broker, allow.ActionDigest, edit(func(p *attest.BrokerResult) { p.Decision.Index = 0 })))), 422, "decision_mismatch"},
	}
	size := f.s.Size()
	for _, c := range cases {
		status, b := f.post(c.poster, "/v1/results", c.body)
		if status != c.status || !strings.Contains(string(b), c.code) {
			t.Errorf("%s: %d %s; want %d %s", c.name, status, b, c.status, c.code)
		}
	}
	if f.s.Size() != size {
		t.Fatalf("refused results grew the log from %d to %d", size, f.s.Size())
	}
}

// canonical is b in JCS form, as entries hold embedded JSON.
func canonical(t *testing.T, b []byte) []byte {
	c, err := jcs.Transform(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
