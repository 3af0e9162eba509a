package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/jcs"
)

// ManifestDigest is the tool manifest digest of an upstream's tools/list
// answer (gateway.md), given as the JSON results of its pages
// ({"tools":[...], "nextCursor": ...}, as on the wire): "sha256:" and the
// lowercase hex SHA-256 of the RFC 8785 (JCS) form of {"tools":[...]}, the
// tool objects exactly as the upstream sent them, every page, ordered by
// name (stable). It is what the gateway attests as tool.manifestDigest
// with every call, so a changed tool — a new description, schema or
// annotation, a tool added or removed — changes the digest in the
// evidence.
func ManifestDigest(pages ...[]byte) (string, error) {
	type named struct {
		name string
		raw  json.RawMessage
	}
	var tools []named
	for i, p := range pages {
		var r struct {
			Tools []json.RawMessage `json:"tools"`
		}
		if err := json.Unmarshal(p, &r); err != nil {
			return "", fmt.Errorf("tools/list page %d: %w", i, err)
		}
		for j, raw := range r.Tools {
			var t struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(raw, &t); err != nil {
				return "", fmt.Errorf("tools/list page %d, tool %d: %w", i, j, err)
			}
			tools = append(tools, named{t.Name, raw})
		}
	}
	slices.SortStableFunc(tools, func(a, b named) int { return strings.Compare(a.name, b.name) })
	var b bytes.Buffer
	b.WriteString(`{"tools":[`)
	for i, t := range tools {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(t.raw)
	}
	b.WriteString(`]}`)
	c, err := jcs.Canonicalize(b.Bytes())
	if err != nil {
		return "", fmt.Errorf("tool manifest: %w", err)
	}
	return entry.Digest(c), nil
}

// listCapture keeps the raw results of the tools/list calls made over a
// connection, so that the manifest digest is over what the upstream sent,
// not over the SDK's decoding of it.
type listCapture struct {
	mu      sync.Mutex
	pending map[any]bool
	results [][]byte
}

// take returns the results captured since the last take.
func (c *listCapture) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.results
	c.results = nil
	return r
}

// captureTransport wraps the upstream transport with a listCapture.
type captureTransport struct {
	inner sdk.Transport
	c     *listCapture
}

func (t *captureTransport) Connect(ctx context.Context) (sdk.Connection, error) {
	conn, err := t.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &captureConn{Connection: conn, c: t.c}, nil
}

type captureConn struct {
	sdk.Connection
	c *listCapture
}

func (c *captureConn) Write(ctx context.Context, m jsonrpc.Message) error {
	if r, ok := m.(*jsonrpc.Request); ok && r.Method == "tools/list" && r.ID.IsValid() {
		c.c.mu.Lock()
		c.c.pending[r.ID.Raw()] = true
		c.c.mu.Unlock()
	}
	return c.Connection.Write(ctx, m)
}

func (c *captureConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	m, err := c.Connection.Read(ctx)
	if r, ok := m.(*jsonrpc.Response); ok && err == nil && r.ID.IsValid() {
		c.c.mu.Lock()
		if c.c.pending[r.ID.Raw()] {
			delete(c.c.pending, r.ID.Raw())
			if r.Error == nil {
				c.c.results = append(c.c.results, bytes.Clone(r.Result))
			}
		}
		c.c.mu.Unlock()
	}
	return m, err
}

var errNoCapture = errors.New("the tools/list answer was not seen on the connection")
