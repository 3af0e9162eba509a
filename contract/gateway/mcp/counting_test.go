package mcp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// countingServer is a Go SDK MCP server that counts the calls that reach
// it: the server side's proof of what the gateway forwarded.
type countingServer struct {
	server *sdk.Server
	mu     sync.Mutex
	calls  map[string]int
	// seen records, per call, when it arrived and its raw arguments.
	seen []arrival
	// onCall, when set, runs at the start of every call.
	onCall func(tool string, args []byte)
}

type arrival struct {
	tool string
	args []byte
	at   time.Time
}

type echoArgs struct {
	Message string `json:"message"`
}

type addArgs struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

func newCountingServer() *countingServer {
	c := &countingServer{calls: map[string]int{}, server: sdk.NewServer(&sdk.Implementation{Name: "counting", Version: "1"}, nil)}
	sdk.AddTool(c.server, &sdk.Tool{Name: "echo", Description: "echoes the message"},
		func(ctx context.Context, req *sdk.CallToolRequest, a echoArgs) (*sdk.CallToolResult, any, error) {
			c.record("echo", req.Params.Arguments)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: a.Message}}}, nil, nil
		})
	sdk.AddTool(c.server, &sdk.Tool{Name: "add", Description: "adds two numbers"},
		func(ctx context.Context, req *sdk.CallToolRequest, a addArgs) (*sdk.CallToolResult, any, error) {
			c.record("add", req.Params.Arguments)
			return nil, map[string]float64{"sum": a.A + a.B}, nil
		})
	sdk.AddTool(c.server, &sdk.Tool{Name: "delete_everything", Description: "deletes everything"},
		func(ctx context.Context, req *sdk.CallToolRequest, a echoArgs) (*sdk.CallToolResult, any, error) {
			c.record("delete_everything", req.Params.Arguments)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "deleted"}}}, nil, nil
		})
	return c
}

func (c *countingServer) record(tool string, args []byte) {
	c.mu.Lock()
	c.calls[tool]++
	c.seen = append(c.seen, arrival{tool: tool, args: append([]byte(nil), args...), at: time.Now()})
	f := c.onCall
	c.mu.Unlock()
	if f != nil {
		f(tool, args)
	}
}

func (c *countingServer) count(tool string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[tool]
}

func (c *countingServer) arrivals() []arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]arrival(nil), c.seen...)
}

// transport connects the server to one client over memory.
func (c *countingServer) transport(t testing.TB) sdk.Transport {
	t.Helper()
	ct, st := sdk.NewInMemoryTransports()
	ss, err := c.server.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	return ct
}
