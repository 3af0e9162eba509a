package mcp_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gateway/mcp"
)

// listNames lists the tools the gateway shows, by name, sorted.
func listNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// callsTransport records the tools/call requests written to the upstream:
// what reached the server's side of the connection.
type callsTransport struct {
	inner sdk.Transport
	mu    sync.Mutex
	tools []string
}

func (c *callsTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &callsConn{Connection: conn, t: c}, nil
}

func (c *callsTransport) called() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tools)
}

type callsConn struct {
	sdk.Connection
	t *callsTransport
}

func (c *callsConn) Write(ctx context.Context, m jsonrpc.Message) error {
	if r, ok := m.(*jsonrpc.Request); ok && r.Method == "tools/call" {
		var p sdk.CallToolParams
		if err := json.Unmarshal(r.Params, &p); err == nil {
			c.t.mu.Lock()
			c.t.tools = append(c.t.tools, p.Name)
			c.t.mu.Unlock()
		}
	}
	return c.Connection.Write(ctx, m)
}

func policyFiltered() *mcp.Mapping { return &mcp.Mapping{FilterTools: mcp.FilterPolicy} }

// TestFilterToolsEverything: against @modelcontextprotocol/server-everything
// and ztlog dev's example policy (mcp.tool.*.echo and mcp.tool.*.add
// allowed; this server's adder is get-sum), filter_tools "policy" lists
// echo only, and without it every tool is listed. A hidden tool is still
// callable: its call is decided, denied, committed, and never forwarded.
func TestFilterToolsEverything(t *testing.T) {
	d := startDev(t)

	_, all := openGateway(t, gatewayOptions(t, d), &sdk.CommandTransport{Command: npmServer(t, "mcp-server-everything")})
	unfiltered := listNames(t, all)
	for _, want := range []string{"echo", "get-sum", "get-env"} {
		if !slices.Contains(unfiltered, want) {
			t.Fatalf("without filter_tools the list %v lacks %s", unfiltered, want)
		}
	}

	o := gatewayOptions(t, d)
	o.Mapping = policyFiltered()
	up := &callsTransport{inner: &sdk.CommandTransport{Command: npmServer(t, "mcp-server-everything")}}
	_, cs := openGateway(t, o, up)
	shown := listNames(t, cs)
	if !slices.Equal(shown, []string{"echo"}) {
		t.Fatalf("with filter_tools policy the list is %v, want [echo] (of %d upstream tools)", shown, len(unfiltered))
	}

	from := d.size(t)
	res := call(t, cs, "get-env", map[string]any{})
	if !res.IsError {
		t.Fatalf("the hidden get-env was not refused: %q", textOf(res))
	}
	idx := logIndex(t, textOf(res))
	deny := d.decision(t, idx)
	if deny.Effect != entry.Deny {
		t.Fatalf("entry %d is %s, want deny", idx, deny.Effect)
	}
	if deny.Action != "mcp.tool.everything.get-env" {
		t.Fatalf("entry %d is about %s, want mcp.tool.everything.get-env", idx, deny.Action)
	}
	if idx < from {
		t.Fatalf("deny at %d is older than the call (log size %d before it)", idx, from)
	}
	if got := up.called(); slices.Contains(got, "get-env") {
		t.Fatalf("the hidden, denied get-env was forwarded to the server (calls sent: %v)", got)
	}
	// A shown tool still works.
	if res := call(t, cs, "echo", map[string]any{"message": "shown"}); res.IsError {
		t.Fatalf("echo: tool error %q", textOf(res))
	}
	if got := up.called(); !slices.Equal(got, []string{"echo"}) {
		t.Fatalf("calls that reached the server: %v, want [echo]", got)
	}
}

// TestFilterToolsGoServer: the same against a Go SDK server that counts
// what reaches it: add and echo shown, delete_everything hidden; calling
// it anyway is a committed deny that never reaches the server.
func TestFilterToolsGoServer(t *testing.T) {
	d := startDev(t)
	srv := newCountingServer()
	o := gatewayOptions(t, d)
	o.Mapping = policyFiltered()
	_, cs := openGateway(t, o, srv.transport(t))
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "echo"}) {
		t.Fatalf("listed %v, want [add echo]", got)
	}
	res := call(t, cs, "delete_everything", map[string]any{"message": "x"})
	if !res.IsError {
		t.Fatalf("the hidden delete_everything was not refused: %q", textOf(res))
	}
	if deny := d.decision(t, logIndex(t, textOf(res))); deny.Effect != entry.Deny {
		t.Fatalf("the hidden tool's call is committed as %s, want deny", deny.Effect)
	}
	if n := srv.count("delete_everything"); n != 0 {
		t.Fatalf("delete_everything reached the server %d times", n)
	}
	// Listing again answers from the cache: the same list.
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "echo"}) {
		t.Fatalf("listed again %v, want [add echo]", got)
	}
}

// TestFilterToolsServiceDown: when the decision service cannot answer
// /v1/actions/possible, tools/list shows the upstream's whole list
// (hiding is presentation only) and every call still fails closed.
func TestFilterToolsServiceDown(t *testing.T) {
	d := startDev(t)
	srv := newCountingServer()
	o := gatewayOptions(t, d)
	o.Mapping = policyFiltered()
	_, cs := openGateway(t, o, srv.transport(t))
	d.kill()
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "delete_everything", "echo"}) {
		t.Fatalf("with ztlog down the list is %v, want every upstream tool", got)
	}
	if res := call(t, cs, "delete_everything", map[string]any{"message": "x"}); !res.IsError {
		t.Fatalf("delete_everything with ztlog down: %q, want a tool error", textOf(res))
	}
	if n := srv.count("delete_everything"); n != 0 {
		t.Fatalf("delete_everything reached the server %d times with ztlog down", n)
	}
}
