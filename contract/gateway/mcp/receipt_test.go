package mcp_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/contract/gateway/mcp"
)

// lockedBuffer is an io.Writer for LoggingTransport, safe for the
// transport's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The gateway keeps the one-time ids of its receipts in memory only
// because no receipt leaves its process (gateway.md, "Receipts"): neither
// the MCP client nor the upstream server ever sees the receipt of an
// allowed call — no compact JWS, not even its id — in any frame of either
// session.
func TestReceiptNeverLeavesTheGateway(t *testing.T) {
	d := startDev(t)
	up := newCountingServer()
	var upFrames, downFrames lockedBuffer
	o := gatewayOptions(t, d)
	ctx, cancel := context.WithCancel(context.Background())
	g, closeGW, err := mcp.Open(ctx, o, &sdk.LoggingTransport{Transport: up.transport(t), Writer: &upFrames})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ct, st := sdk.NewInMemoryTransports()
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, st) }()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "1"}, nil).
		Connect(ctx, &sdk.LoggingTransport{Transport: ct, Writer: &downFrames}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); cancel(); <-served; closeGW() })

	from := d.size(t)
	res := call(t, cs, "echo", map[string]any{"message": "hi"})
	if res.IsError {
		t.Fatalf("echo: %q", textOf(res))
	}
	allow, i := d.findDecision(t, from, "mcp.tool.counting.echo")
	if allow.Receipt == nil || allow.Receipt.ID == "" {
		t.Fatalf("the allow at %d records no receipt", i)
	}
	jti := allow.Receipt.ID
	// The result entry names the receipt honoured: the gateway's broker
	// used the receipt the decision issued.
	if r, _ := d.resultOf(t, i); r.ReceiptID != jti {
		t.Fatalf("the result names receipt %s, the decision issued %s", r.ReceiptID, jti)
	}
	for side, frames := range map[string]string{"client": downFrames.String(), "upstream": upFrames.String()} {
		if !strings.Contains(frames, `"tools/call"`) {
			t.Fatalf("no tools/call among the %s session's frames: the capture is broken", side)
		}
		// Every compact JWS starts with the base64url of `{"`.
		if strings.Contains(frames, "eyJ") {
			t.Errorf("the %s session carries something like a compact JWS", side)
		}
		if strings.Contains(frames, jti) {
			t.Errorf("the %s session carries the receipt id %s", side, jti)
		}
	}
}
