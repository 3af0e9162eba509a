package a2a_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gateway/a2a"
)

// nodeModules is where .ci/deps.d/a2a.sh installs @a2a-js/sdk.
const nodeModules = "/opt/ztlog-tools/node_modules"

// needNode skips unless node and @a2a-js/sdk (with express) are installed.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (needed to run the @a2a-js/sdk server and client; .ci/deps.d/nodejs.sh)")
	}
	for _, pkg := range []string{"@a2a-js/sdk", "express"} {
		if _, err := os.Stat(filepath.Join(nodeModules, pkg, "package.json")); err != nil {
			t.Skipf("%s is not installed under %s (.ci/deps.d/a2a.sh installs it)", pkg, nodeModules)
		}
	}
	return node
}

// agentServer is a running @a2a-js/sdk A2A server (testdata/server.cjs).
type agentServer struct {
	URL    string
	record string
	cmd    *exec.Cmd
}

func startAgent(t *testing.T, node string) *agentServer {
	t.Helper()
	record := filepath.Join(t.TempDir(), "received.jsonl")
	cmd := exec.Command(node, "testdata/server.cjs", record)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				port <- p
			}
		}
	}()
	select {
	case p := <-port:
		return &agentServer{URL: "http://127.0.0.1:" + p, record: record, cmd: cmd}
	case <-time.After(20 * time.Second):
		t.Fatal("the A2A server did not start")
	}
	return nil
}

// stop stops the agent server and waits until it is gone.
func (a *agentServer) stop() {
	a.cmd.Process.Kill()
	a.cmd.Wait()
}

// received lists the texts of the messages that reached the agent.
func (a *agentServer) received(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(a.record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m struct{ Text string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("record line %q: %v", line, err)
		}
		texts = append(texts, m.Text)
	}
	return texts
}

type reply struct {
	OK    bool   `json:"ok"`
	Text  string `json:"text"`
	Error string `json:"error"`
}

// send runs the @a2a-js/sdk client (testdata/client.cjs) against base.
func send(t *testing.T, node, base, mode, skill, text string) reply {
	t.Helper()
	cmd := exec.Command(node, "testdata/client.cjs", base, mode, skill, text)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	var r reply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	return r
}

// gate starts a gate in front of agent, deciding with srv; it returns the
// gate's URL.
func gate(t *testing.T, srv *contracttest.Server, ztlogURL, agent string) string {
	t.Helper()
	agentSVID, brokerSVID := srv.SVID(contracttest.AgentID), srv.SVID(contracttest.BrokerID)
	c, err := client.New(client.Config{URL: ztlogURL, SVID: agentSVID, Bundles: srv.Src, ServerID: contracttest.ServerID,
		Timeout: 3 * time.Second, Retry: client.Retry{Attempts: 1}, Breaker: client.Breaker{Failures: -1},
		HTTPClient: srv.Client(agentSVID)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := a2a.New(context.Background(), a2a.Config{Upstream: agent, Decider: c, Broker: brokerSVID,
		Reporter: &broker.HTTPReporter{Client: srv.Client(brokerSVID), BaseURL: ztlogURL, Attempts: 2}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: g}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// decisions returns the decision entries and result entries committed
// from index from on.
func entries(t *testing.T, srv *contracttest.Server, from uint64) (ds []*entry.Decision, rs []*entry.Result, dIdx []uint64) {
	t.Helper()
	for i := from; i < srv.Size(); i++ {
		e, err := entry.Parse(srv.Entry(i))
		if err != nil {
			t.Fatal(err)
		}
		switch e := e.(type) {
		case *entry.Decision:
			ds, dIdx = append(ds, e), append(dIdx, i)
		case *entry.Result:
			rs = append(rs, e)
		}
	}
	return ds, rs, dIdx
}

// waitSize waits until the log holds n entries.
func waitSize(t *testing.T, srv *contracttest.Server, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Size() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log holds %d entries, want %d", srv.Size(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAllowedMessageIsForwardedAndLeavesDecisionAndResult(t *testing.T) {
	node := needNode(t)
	agent := startAgent(t, node)
	srv := contracttest.Start(t, contracttest.Options{})
	base := gate(t, srv, srv.URL, agent.URL)
	for _, mode := range []string{"send", "stream"} {
		t.Run(mode, func(t *testing.T) {
			from := srv.Size()
			text := "hello over " + mode
			r := send(t, node, base, mode, "echo", text)
			if !r.OK {
				t.Fatalf("allowed message failed: %s", r.Error)
			}
			if want := "echo: " + text; r.Text != want {
				t.Errorf("answer %q, want %q", r.Text, want)
			}
			got := agent.received(t)
			if len(got) == 0 || got[len(got)-1] != text {
				t.Errorf("the agent received %q, want it to end with %q", got, text)
			}
			waitSize(t, srv, from+2)
			ds, rs, idx := entries(t, srv, from)
			if len(ds) != 1 {
				t.Fatalf("%d decisions committed, want 1", len(ds))
			}
			if ds[0].Action != "a2a.echo-agent.echo" {
				t.Errorf("action %q", ds[0].Action)
			}
			if ds[0].Effect != entry.Allow {
				t.Errorf("effect %q", ds[0].Effect)
			}
			if !strings.HasSuffix(ds[0].Resource, "/a2a/jsonrpc") {
				t.Errorf("resource %q, want the agent card's url", ds[0].Resource)
			}
			if ds[0].ArgsDigest == "" {
				t.Error("no args digest: the message params were not digested")
			}
			if len(rs) != 1 {
				t.Fatalf("%d results committed, want 1", len(rs))
			}
			if rs[0].DecisionIndex != idx[0] {
				t.Errorf("the result links to decision %d, want %d", rs[0].DecisionIndex, idx[0])
			}
			if rs[0].Outcome != "ok" {
				t.Errorf("result outcome %q, want ok", rs[0].Outcome)
			}
			if rs[0].Broker != contracttest.BrokerID.String() {
				t.Errorf("result broker %q", rs[0].Broker)
			}
		})
	}
}

func TestDeniedMessageNeverReachesTheAgent(t *testing.T) {
	node := needNode(t)
	agent := startAgent(t, node)
	srv := contracttest.Start(t, contracttest.Options{})
	base := gate(t, srv, srv.URL, agent.URL)
	for _, c := range []struct{ mode, skill, action string }{
		{"send", "transfer", "a2a.echo-agent.transfer"},
		{"stream", "transfer", "a2a.echo-agent.transfer"},
		{"send", "-", "a2a.echo-agent.send_message"},
	} {
		t.Run(c.mode+"-"+c.skill, func(t *testing.T) {
			from := srv.Size()
			before := len(agent.received(t))
			r := send(t, node, base, c.mode, c.skill, "pay 100 to mallory")
			if r.OK {
				t.Fatalf("denied message answered %q", r.Text)
			}
			if !strings.Contains(r.Error, "denied") || !strings.Contains(r.Error, "log index") {
				t.Errorf("client error %q does not say denied and name the log index", r.Error)
			}
			if got := agent.received(t); len(got) != before {
				t.Errorf("the agent received %d messages, want %d (nothing forwarded): %q", len(got), before, got)
			}
			waitSize(t, srv, from+1)
			ds, rs, _ := entries(t, srv, from)
			if len(ds) != 1 {
				t.Fatalf("%d decisions committed, want 1", len(ds))
			}
			if ds[0].Effect != entry.Deny {
				t.Errorf("effect %q, want deny", ds[0].Effect)
			}
			if ds[0].Action != c.action {
				t.Errorf("action %q, want %q", ds[0].Action, c.action)
			}
			if len(rs) != 0 {
				t.Errorf("%d results committed for a deny", len(rs))
			}
		})
	}
}

func TestZtlogDownFailsClosed(t *testing.T) {
	node := needNode(t)
	agent := startAgent(t, node)
	srv := contracttest.Start(t, contracttest.Options{})
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + ln.Addr().String()
	ln.Close()
	base := gate(t, srv, down, agent.URL)
	for _, mode := range []string{"send", "stream"} {
		r := send(t, node, base, mode, "echo", "hello while ztlog is down")
		if r.OK {
			t.Fatalf("%s: answered %q with ztlog down", mode, r.Text)
		}
		if !strings.Contains(r.Error, "no decision") {
			t.Errorf("%s: client error %q does not say no decision", mode, r.Error)
		}
	}
	if got := agent.received(t); len(got) != 0 {
		t.Errorf("the agent received %q with ztlog down", got)
	}
}

func TestUnknownSkillAndMethodsAreRefused(t *testing.T) {
	node := needNode(t)
	agent := startAgent(t, node)
	srv := contracttest.Start(t, contracttest.Options{})
	base := gate(t, srv, srv.URL, agent.URL)
	// The card the gate serves sends clients to the gate, not the agent.
	resp, err := http.Get(base + a2a.CardPath)
	if err != nil {
		t.Fatal(err)
	}
	var card struct {
		URL                  string `json:"url"`
		AdditionalInterfaces []struct {
			URL string `json:"url"`
		} `json:"additionalInterfaces"`
	}
	json.NewDecoder(resp.Body).Decode(&card)
	resp.Body.Close()
	if card.URL != base+"/a2a/jsonrpc" {
		t.Errorf("served card url %q, want %q", card.URL, base+"/a2a/jsonrpc")
	}
	for _, i := range card.AdditionalInterfaces {
		if !strings.HasPrefix(i.URL, base) {
			t.Errorf("served card offers %q, which bypasses the gate", i.URL)
		}
	}
	from := srv.Size()
	r := send(t, node, base, "send", "launch", "x")
	if r.OK || !strings.Contains(r.Error, `"launch" is not a skill`) {
		t.Errorf("unknown skill: %+v", r)
	}
	for _, method := range []string{"tasks/pushNotificationConfig/set", "SendMessage"} {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":{}}`, method)
		resp, err := http.Post(base+"/a2a/jsonrpc", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			ID    int `json:"id"`
			Error struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if e.Error.Code != a2a.CodeMethodNotFound {
			t.Errorf("%s: error code %d, want %d", method, e.Error.Code, a2a.CodeMethodNotFound)
		}
		if e.ID != 7 {
			t.Errorf("%s: id %d, want 7", method, e.ID)
		}
	}
	if got := agent.received(t); len(got) != 0 {
		t.Errorf("the agent received %q", got)
	}
	if got := srv.Size(); got != from {
		t.Errorf("the log grew from %d to %d: a refused request was decided", from, got)
	}
}

// rpc posts one JSON-RPC request to the gate and returns the error code
// (0 for a result).
func rpc(t *testing.T, base, body string) int {
	t.Helper()
	resp, err := http.Post(base+"/a2a/jsonrpc", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Error == nil {
		return 0
	}
	return e.Error.Code
}

// An allowed message the agent answers with a JSON-RPC error leaves a
// "failed" result; an agent gone after the allow leaves an "error" one.
func TestResultOutcomes(t *testing.T) {
	node := needNode(t)
	agent := startAgent(t, node)
	srv := contracttest.Start(t, contracttest.Options{})
	base := gate(t, srv, srv.URL, agent.URL)

	from := srv.Size()
	// No parts and no messageId: the A2A server refuses the message.
	if code := rpc(t, base, `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","metadata":{"skill":"echo"}}}}`); code == 0 {
		t.Fatal("the agent accepted a message without parts")
	}
	waitSize(t, srv, from+2)
	_, rs, _ := entries(t, srv, from)
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	if rs[0].Outcome != "failed" {
		t.Errorf("outcome %q, want failed (the agent answered an error)", rs[0].Outcome)
	}

	// The agent goes away after the gate read its card.
	agent.stop()
	from = srv.Size()
	if code := rpc(t, base, `{"jsonrpc":"2.0","id":2,"method":"message/send","params":{"message":{"kind":"message","messageId":"x","role":"user","parts":[{"kind":"text","text":"hi"}],"metadata":{"skill":"echo"}}}}`); code != a2a.CodeUpstream {
		t.Errorf("agent gone: code %d, want %d", code, a2a.CodeUpstream)
	}
	waitSize(t, srv, from+2)
	_, rs, _ = entries(t, srv, from)
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	if rs[0].Outcome != "error" {
		t.Errorf("outcome %q, want error (the agent could not be reached)", rs[0].Outcome)
	}
}
