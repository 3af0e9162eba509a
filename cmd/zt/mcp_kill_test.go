package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// heldUpstreamEnv makes the test binary an MCP server over stdio (see
// serveHeldUpstream) instead of running the tests.
const heldUpstreamEnv = "ZT_TEST_HELD_UPSTREAM"

// serveHeldUpstream serves one tool, echo, whose call creates DIR/arrived
// and answers only once DIR/release exists: the test acts between the
// call's arrival upstream (its decision is committed) and its answer.
func serveHeldUpstream(dir string) int {
	s := sdk.NewServer(&sdk.Implementation{Name: "held", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			os.WriteFile(filepath.Join(dir, "arrived"), nil, 0o600)
			for {
				if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
					break
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "held echo"}}}, nil
		})
	if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
		return 1
	}
	return 0
}

// entryAt reads entry i if the log serves it already.
func entryAt(t *testing.T, d *dev, i uint64) (entry.Entry, bool) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/entries/%d", d.addr, i))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	return readEntry(t, d, i), true
}

// The gateway answers an allowed call once its signed result is kept in
// the outbox, before the log has it. Killed (SIGKILL) between that answer
// and the delivery — the log unreachable meanwhile — it loses nothing: the
// result is in the outbox, and the restarted gateway delivers it as the
// decision's result entry.
func TestMCPProxyKilledAfterAnswerDeliversOnRestart(t *testing.T) {
	d := startDev(t)
	proxy := newCutProxy(t, d.addr)
	held := t.TempDir()
	outbox := d.svid("broker") + ".outbox"
	gateway := func(server string) *exec.Cmd {
		cmd := exec.Command(ztBin, "mcp", "proxy", "--server", server, "--svid", d.svid("agent"),
			"--model", "anthropic/claude-sonnet-4", "-v", "--", os.Args[0])
		cmd.Env = append(os.Environ(), heldUpstreamEnv+"="+held)
		// Its own process group, so that the kill takes its upstream too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second
		return cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stderr := &devproc.SyncBuffer{}
	first := gateway("https://" + proxy.ln.Addr().String())
	first.Stderr = stderr
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: first}, nil)
	if err != nil {
		t.Fatalf("connecting to zt mcp proxy: %v\n%s", err, stderr.String())
	}
	answered := make(chan *sdk.CallToolResult, 1)
	go func() {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hold"}})
		if err != nil {
			res = &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}}}
		}
		answered <- res
	}()
	for {
		if _, err := os.Stat(filepath.Join(held, "arrived")); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the call never reached the upstream\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The decision is committed and the call forwarded: the log becomes
	// unreachable before the upstream answers, so the result cannot be
	// delivered.
	proxy.cut()
	os.WriteFile(filepath.Join(held, "release"), nil, 0o600)
	res := <-answered
	// Killed right at the answer (with its upstream): the result was kept
	// before it.
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The SDK's command transport reaps the process on Close (cmd.Wait);
	// a second Wait here would race with it.
	cs.Close()
	// The result is durable in the gateway's courier journal (its file
	// for readers is written after the answer, and may not be there):
	// opening the outbox recovers the journal of the dead process into
	// result files, as the restarted gateway does.
	ob, err := broker.OpenOutbox(outbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kept, _ := ob.Pending(); len(kept) != 1 {
		t.Fatalf("killed at the answer, the gateway left %v in the outbox (its journal recovered), want one result\n%s", kept, stderr.String())
	}
	if res.IsError {
		t.Fatalf("the held echo answered an error: %q\n%s", mcpText(res), stderr.String())
	}
	if got := mcpText(res); got != "held echo" {
		t.Fatalf("the held echo answered %q", got)
	}

	// The log holds the allow (its index from the gateway's log line) and
	// no result linked to it.
	var decision uint64
	line := stderr.String()
	i := strings.Index(line, "result kept in the outbox")
	if i < 0 {
		t.Fatalf("the gateway did not log the kept result\n%s", line)
	}
	j := strings.Index(line[i:], "log_index=")
	if j < 0 {
		t.Fatalf("no log_index in the gateway's log\n%s", line)
	}
	if _, err := fmt.Sscan(line[i+j+len("log_index="):], &decision); err != nil {
		t.Fatalf("log_index in the gateway's log: %v", err)
	}
	dec, ok := readEntry(t, d, decision).(*entry.Decision)
	if !ok {
		t.Fatalf("entry %d is not a decision", decision)
	}
	if dec.Action != "mcp.tool.held.echo" {
		t.Fatalf("decision %d is about %s, want mcp.tool.held.echo", decision, dec.Action)
	}
	if dec.Effect != entry.Allow {
		t.Fatalf("decision %d is a %s, want an allow", decision, dec.Effect)
	}
	for i := decision + 1; ; i++ {
		e, ok := entryAt(t, d, i)
		if !ok {
			break
		}
		if r, isRes := e.(*entry.Result); isRes && r.DecisionIndex == decision {
			t.Fatalf("entry %d is the result of decision %d before the restart: the test did not kill between answer and delivery", i, decision)
		}
	}

	// Restarted (the log reachable): the kept result is delivered.
	second := gateway(d.url())
	stderr2 := &devproc.SyncBuffer{}
	second.Stderr = stderr2
	cs2, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: second}, nil)
	if err != nil {
		t.Fatalf("restarting zt mcp proxy: %v\n%s", err, stderr2.String())
	}
	defer cs2.Close()
	for i := decision + 1; ; {
		e, ok := entryAt(t, d, i)
		if !ok {
			if ctx.Err() != nil {
				t.Fatalf("no result of decision %d after the restart\n%s", decision, stderr2.String())
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if r, isRes := e.(*entry.Result); isRes && r.DecisionIndex == decision {
			if r.Outcome != "ok" {
				t.Fatalf("the delivered result has outcome %q, want ok", r.Outcome)
			}
			break
		}
		i++
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(outbox, "result-*.json"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the delivery the outbox still holds %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
