package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zt-infra/ztlog/contract/entry"
)

// TestMCPProxyStdio is how an MCP client uses the gateway: it launches
// `zt mcp proxy ... -- <server>` in place of the server (the Go SDK's
// CommandTransport), here in front of @modelcontextprotocol/server-everything
// and a real `ztlog dev`.
func TestMCPProxyStdio(t *testing.T) {
	server := "/opt/ztlog-tools/node_modules/.bin/mcp-server-everything"
	if _, err := os.Stat(server); err != nil {
		t.Skip("mcp-server-everything is not installed (npm @modelcontextprotocol/server-everything; .ci/deps.d/mcp-servers.sh installs it)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (needed by @modelcontextprotocol/server-everything)")
	}
	d := startDev(t)
	var stderr bytes.Buffer
	cmd := exec.Command(ztBin, "mcp", "proxy", "--server", d.url(), "--svid", d.svid("agent"),
		"--model", "anthropic/claude-sonnet-4", "--sync-results", "--", server)
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connecting to zt mcp proxy: %v\n%s", err, stderr.String())
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "via zt mcp proxy"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || !strings.Contains(mcpText(res), "via zt mcp proxy") {
		t.Fatalf("echo answered %q (error %v)", mcpText(res), res.IsError)
	}
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 1, "b": 2}})
	if err != nil {
		t.Fatal(err)
	}
	msg := mcpText(res)
	if !res.IsError || !strings.Contains(msg, "policy.deny") {
		t.Fatalf("get-sum answered %q (error %v), want a deny naming policy.deny", msg, res.IsError)
	}
	i := strings.Index(msg, "log index ")
	var idx uint64
	if i < 0 {
		t.Fatalf("no log index in %q", msg)
	}
	for _, c := range msg[i+len("log index "):] {
		if c < '0' || c > '9' {
			break
		}
		idx = idx*10 + uint64(c-'0')
	}
	deny, ok := readEntry(t, d, idx).(*entry.Decision)
	if !ok || deny.Effect != entry.Deny || deny.Action != "mcp.tool.everything.get-sum" {
		t.Fatalf("entry %d is not the deny of get-sum: %+v", idx, deny)
	}
	// With --sync-results the echo's result was committed before its
	// answer: the allow just before the deny has its result before it.
	found := false
	for j := uint64(0); j < idx; j++ {
		if r, ok := readEntry(t, d, j).(*entry.Result); ok {
			dec, _ := readEntry(t, d, r.DecisionIndex).(*entry.Decision)
			if dec != nil && dec.Action == "mcp.tool.everything.echo" && r.Outcome == "ok" {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no result of the echo call was committed before the next call")
	}
}

func mcpText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestMCPProxyUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mcp"}, "usage:"},
		{[]string{"mcp", "proxy", "--server", "https://127.0.0.1:1", "--svid", "x", "--", "srv"}, "needs --model"},
		{[]string{"mcp", "proxy", "--server", "https://127.0.0.1:1", "--svid", "x", "--model", "a/b"}, "give the MCP server's command after --"},
		{[]string{"mcp", "proxy", "--server", "https://127.0.0.1:1", "--svid", "x", "--model", "a/b", "--listen", "0.0.0.0:9", "--upstream", "http://127.0.0.1:1/"}, "want a loopback address"},
		{[]string{"mcp", "proxy", "--server", "https://127.0.0.1:1", "--svid", "x", "--model", "a/b", "--listen", "127.0.0.1:9"}, "needs both --listen and --upstream"},
		{[]string{"mcp", "proxy", "--server", "https://127.0.0.1:1", "--svid", "/nonexistent/agent", "--model", "a/b", "--", "srv"}, "--svid /nonexistent/agent"},
		{[]string{"mcp", "proxy", "--server", "https://127.0.0.1:1", "--svid", "x", "--model", "a/b", "--policy-watch", "500ms", "--", "srv"}, "--policy-watch 500ms: want at least 1s"},
	} {
		cmd := exec.Command(ztBin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("zt %v: %v, want exit status 2", tc.args, err)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("zt %v said %q, want %q", tc.args, stderr.String(), tc.want)
		}
	}
}
