package mcp_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// earlyNotice delivers a tools/list_changed notification to the gateway
// just before the upstream's answer to initialize, while the gateway is
// still connecting. (The Go SDK server does this on its own: a tool added
// before any session schedules a list_changed 10 ms later, for every
// session connected by then.)
type earlyNotice struct{ inner sdk.Transport }

func (t earlyNotice) Connect(ctx context.Context) (sdk.Connection, error) {
	c, err := t.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &earlyConn{Connection: c}, nil
}

type earlyConn struct {
	sdk.Connection
	held jsonrpc.Message // the initialize answer, delivered after the notice
	sent bool
}

func (c *earlyConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	if c.held != nil {
		m := c.held
		c.held = nil
		return m, nil
	}
	m, err := c.Connection.Read(ctx)
	if err != nil || c.sent {
		return m, err
	}
	if _, ok := m.(*jsonrpc.Response); !ok {
		return m, nil
	}
	c.sent, c.held = true, m
	return &jsonrpc.Request{Method: "notifications/tools/list_changed", Params: json.RawMessage(`{}`)}, nil
}

// A list_changed that arrives while the gateway is connecting is handled
// once the gateway is up, never on a half-built one (CI once crashed here
// with a nil upstream session).
func TestListChangedDuringConnect(t *testing.T) {
	d := startDev(t)
	for i := range 5 {
		up := newCountingServer()
		_, cs := openGateway(t, gatewayOptions(t, d), earlyNotice{up.transport(t)})
		res := call(t, cs, "echo", map[string]any{"message": "after an early list_changed"})
		if res.IsError {
			t.Fatalf("round %d: echo after an early list_changed: %q", i, textOf(res))
		}
	}
}
