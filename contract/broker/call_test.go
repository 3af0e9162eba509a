package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
)

// callFixture is a broker without a sandbox runner, as an MCP gateway
// holds one, against a real service.
type callFixture struct {
	t      *testing.T
	s      *contracttest.Server
	replay string
	// inProcess keeps one-time ids in memory (InProcessReplay), as the
	// MCP gateway does, instead of in the replay file.
	inProcess bool
}

func newCallFixture(t *testing.T) *callFixture {
	return &callFixture{t: t, s: contracttest.Start(t, contracttest.Options{}), replay: filepath.Join(t.TempDir(), "replay")}
}

// replayModes runs a test with the one-time ids in the replay file and in
// memory: every check but the record's durability is the same.
var replayModes = []struct {
	name      string
	inProcess bool
}{{"replay file", false}, {"in process", true}}

func (f *callFixture) broker(id spiffeid.ID) *broker.Broker {
	f.t.Helper()
	var replay broker.ReceiptIDs = broker.NewInProcessReplay(5*time.Second, nil)
	if !f.inProcess {
		file, err := broker.OpenReplay(f.replay, 5*time.Second, time.Now())
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { file.Close() })
		replay = file
	}
	svid := f.s.SVID(id)
	b, err := broker.New(broker.Config{SVID: svid, Issuer: contracttest.Origin,
		Keys: &receipt.HTTPKeys{Client: f.s.Client(svid), URL: f.s.URL + "/v1/receipts/jwks.json"}, Replay: replay,
		Reporter: &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: f.s.URL}})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// decide asks for demo.echo with args, no capability manifest.
func (f *callFixture) decide(args string) (*broker.Call, *api.ActionResponse) {
	f.t.Helper()
	body := `{"action":"demo.echo","resource":"demo://hello","broker":"` + contracttest.BrokerID.String() + `","args":` + args + `}`
	req, _ := http.NewRequest("POST", f.s.URL+"/v1/actions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.s.Client(f.s.SVID(contracttest.AgentID)).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ar api.ActionResponse
	if err := json.Unmarshal(raw, &ar); err != nil || ar.Decision != "allow" {
		f.t.Fatalf("decision: %d %s", resp.StatusCode, raw)
	}
	digest, _ := api.ArgsDigest([]byte(args))
	return &broker.Call{Receipt: ar.Receipt, Action: "demo.echo", Resource: "demo://hello", ArgsDigest: digest,
		Caller:  contracttest.AgentID.String(),
		Sandbox: attest.SandboxApplied{Kind: "none", Capabilities: entry.Digest(nil), Applied: []string{"mcp.forward test/echo"}}}, &ar
}

func okOutcome(ran *int) func(context.Context) broker.CallOutcome {
	return func(context.Context) broker.CallOutcome {
		*ran++
		now := time.Now()
		return broker.CallOutcome{Outcome: attest.OutcomeOK, StartedAt: now, FinishedAt: now,
			Stdout: attest.Output{Digest: entry.Digest([]byte("out")), Size: 3}, Stderr: attest.Output{Digest: entry.Digest(nil)}}
	}
}

func TestPerformRunsOnceAndCommitsTheResult(t *testing.T) {
	for _, m := range replayModes {
		t.Run(m.name, func(t *testing.T) { performRunsOnce(t, m.inProcess) })
	}
}

func performRunsOnce(t *testing.T, inProcess bool) {
	f := newCallFixture(t)
	f.inProcess = inProcess
	b := f.broker(contracttest.BrokerID)
	call, ar := f.decide(`{"message":"hi"}`)
	ran := 0
	rep, err := b.Perform(context.Background(), call, okOutcome(&ran))
	if err != nil {
		t.Fatal(err)
	}
	if ran != 1 {
		t.Fatalf("the call ran %d times", ran)
	}
	if rep.ReportError != nil {
		t.Fatalf("result not committed: %v", rep.ReportError)
	}
	if rep.Result == nil {
		t.Fatal("no committed result")
	}
	res, err := entry.Parse(f.s.Entry(rep.Result.Log.Index))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := res.(*entry.Result)
	if !ok {
		t.Fatalf("entry %d is not a result", rep.Result.Log.Index)
	}
	if r.DecisionIndex != ar.Log.Index {
		t.Fatalf("the result links to %d, the decision is %d", r.DecisionIndex, ar.Log.Index)
	}
	if r.Outcome != "ok" || r.ExitStatus == nil || *r.ExitStatus != 0 {
		t.Fatalf("result outcome %q exit %v", r.Outcome, r.ExitStatus)
	}
	if got := r.Statement.Claims["stdout.digest"]; got != entry.Digest([]byte("out")) {
		t.Fatalf("result stdout digest %s", got)
	}
	// The one-time id is spent.
	_, err = b.Perform(context.Background(), call, okOutcome(&ran))
	if ref, ok := broker.AsRefused(err); !ok || ref.Code != broker.RefuseReplayed {
		t.Fatalf("a second Perform with the same receipt: %v, want %s", err, broker.RefuseReplayed)
	}
	if ran != 1 {
		t.Fatalf("the replayed call ran (%d runs)", ran)
	}
}

func TestPerformRefuses(t *testing.T) {
	f := newCallFixture(t)
	for _, tc := range []struct {
		name   string
		broker spiffeid.ID
		change func(*broker.Call)
		code   string
	}{
		{"other arguments than decided", contracttest.BrokerID, func(c *broker.Call) { c.ArgsDigest = entry.Digest([]byte("{}")) }, broker.RefuseWork},
		{"other resource than decided", contracttest.BrokerID, func(c *broker.Call) { c.Resource = "demo://other" }, broker.RefuseWork},
		{"other caller than the receipt's subject", contracttest.BrokerID, func(c *broker.Call) { c.Caller = otherAgent.String() }, broker.RefuseCaller},
		{"receipt for another broker", otherBroker, func(*broker.Call) {}, broker.RefuseAudience},
		{"forged receipt", contracttest.BrokerID, func(c *broker.Call) { c.Receipt = c.Receipt[:len(c.Receipt)-4] + "AAAA" }, broker.RefuseReceipt},
	} {
		for _, m := range replayModes {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				f.inProcess = m.inProcess
				b := f.broker(tc.broker)
				call, _ := f.decide(`{"message":"` + tc.name + `"}`)
				tc.change(call)
				ran := 0
				_, err := b.Perform(context.Background(), call, okOutcome(&ran))
				ref, ok := broker.AsRefused(err)
				if !ok || ref.Code != tc.code {
					t.Fatalf("Perform: %v, want refusal %s", err, tc.code)
				}
				if ran != 0 {
					t.Fatalf("a refused call ran")
				}
			})
		}
	}
}

func TestHandleWithoutRunnerRefuses(t *testing.T) {
	f := newCallFixture(t)
	b := f.broker(contracttest.BrokerID)
	_, err := b.Handle(context.Background(), &broker.Work{Receipt: "x", Action: "demo.echo", Resource: "r", Argv: []string{"true"}})
	if ref, ok := broker.AsRefused(err); !ok || ref.Code != broker.RefuseInternal {
		t.Fatalf("Handle without a runner: %v, want %s", err, broker.RefuseInternal)
	}
}
