package mcp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gateway/mcp"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// The tests run the gateway against a real `ztlog dev` process (built
// once per test binary), real MCP servers (the npm reference servers, or
// Go SDK servers) and the Go SDK's client.

var ztlogBin, auditBin string

func TestMain(m *testing.M) {
	devproc.MainWithBinaries(m, map[*string]string{&ztlogBin: "../../../cmd/ztlog", &auditBin: "../../../cmd/zt-audit"})
}

// dev is a running `ztlog dev` (devproc.Start).
type dev struct{ *devproc.Dev }

func (d *dev) url() string             { return d.URL() }
func (d *dev) file(name string) string { return d.DevFile(name) }
func (d *dev) kill()                   { d.Cmd.Process.Kill(); d.Cmd.Wait() }

func startDev(t testing.TB) *dev {
	t.Helper()
	return startDevIn(t, t.TempDir())
}

// startDevIn runs `ztlog dev` with its data under dir.
func startDevIn(t testing.TB, dir string) *dev {
	t.Helper()
	return &dev{devproc.Start(t, ztlogBin, dir)}
}

// size is the size of the log's latest checkpoint.
func (d *dev) size(t testing.TB) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + d.Addr + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(string(b), "\n")
	var n uint64
	if len(lines) < 2 {
		t.Fatalf("checkpoint: %q", b)
	}
	fmt.Sscan(lines[1], &n)
	return n
}

// decision and result read typed entries.
func (d *dev) decision(t testing.TB, i uint64) *entry.Decision {
	t.Helper()
	e, ok := d.Entry(t, i).(*entry.Decision)
	if !ok {
		t.Fatalf("entry %d is not a decision", i)
	}
	return e
}

// resultOf finds the result entry linked to decision i among the entries
// after it.
func (d *dev) resultOf(t testing.TB, i uint64) (*entry.Result, uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for j := i + 1; ; {
		if j >= d.size(t) {
			if time.Now().After(deadline) {
				t.Fatalf("no result entry links to decision %d", i)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if r, ok := d.Entry(t, j).(*entry.Result); ok && r.DecisionIndex == i {
			return r, j
		}
		j++
	}
}

// gatewayOptions are the gateway's options against d: the demo agent, the
// demo broker, an attested allowed model.
func gatewayOptions(t testing.TB, d *dev) mcp.Options {
	t.Helper()
	bundle := d.file("bundle.pem")
	agent, err := identity.FromFiles(identity.Files{Cert: d.file("agent.pem"), Key: d.file("agent.key"), Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	brokerSrc, err := identity.FromFiles(identity.Files{Cert: d.file("broker.pem"), Key: d.file("broker.key"), Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close(); brokerSrc.Close() })
	dir := t.TempDir()
	return mcp.Options{URL: d.url(), Agent: agent, Broker: brokerSrc, Outbox: filepath.Join(dir, "outbox"),
		Timeout: 5 * time.Second,
		Runtime: attest.RuntimeContext{Model: attest.Model{Provider: "anthropic", Name: "claude-sonnet-4"},
			Code: attest.Code{Digest: entry.Digest([]byte("mcp gateway test"))}}}
}

// openGateway starts a gateway over upstream and connects a Go SDK client
// to it (in memory).
func openGateway(t testing.TB, o mcp.Options, upstream sdk.Transport) (*mcp.Gateway, *sdk.ClientSession) {
	t.Helper()
	return openGatewayClient(t, o, upstream, nil)
}

// openGatewayClient is openGateway with the client's options.
func openGatewayClient(t testing.TB, o mcp.Options, upstream sdk.Transport, copts *sdk.ClientOptions) (*mcp.Gateway, *sdk.ClientSession) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g, closeGW, err := mcp.Open(ctx, o, upstream)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ct, st := sdk.NewInMemoryTransports()
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, st) }()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "1"}, copts).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); cancel(); <-served; closeGW() })
	return g, cs
}

// call calls a tool through the gateway.
func call(t testing.TB, cs *sdk.ClientSession, tool string, args any) *sdk.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	return res
}

// textOf is the text of a result's content.
func textOf(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// logIndex reads "log index N" from a gateway tool error.
func logIndex(t testing.TB, text string) uint64 {
	t.Helper()
	i := strings.Index(text, "log index ")
	if i < 0 {
		t.Fatalf("no log index in %q", text)
	}
	var n uint64
	if _, err := fmt.Sscan(strings.TrimRight(strings.Fields(text[i+len("log index "):])[0], ",;."), &n); err != nil {
		t.Fatalf("log index in %q: %v", text, err)
	}
	return n
}

// npmServer is the command of an npm MCP server installed by
// .ci/deps.d/mcp-servers.sh; the test skips naming it when absent.
func npmServer(t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	path := filepath.Join("/opt/ztlog-tools/node_modules/.bin", bin)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is not installed (npm @modelcontextprotocol/%s; .ci/deps.d/mcp-servers.sh installs it)", bin, strings.TrimPrefix(bin, "mcp-"))
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (needed by the npm MCP servers)")
	}
	return exec.Command(path, args...)
}

// findDecision scans the log from index from for the first decision about
// action, waiting for checkpoints.
func (d *dev) findDecision(t testing.TB, from uint64, action string) (*entry.Decision, uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for j := from; ; {
		if j >= d.size(t) {
			if time.Now().After(deadline) {
				t.Fatalf("no decision about %s from index %d on", action, from)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if e, ok := d.Entry(t, j).(*entry.Decision); ok && e.Action == action {
			return e, j
		}
		j++
	}
}
