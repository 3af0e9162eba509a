package mcp_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gateway/mcp"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// TestEverythingAllowedAndDenied runs the gateway between the Go SDK's
// client and @modelcontextprotocol/server-everything: echo is allowed by
// ztlog dev's example policy, reaches the server, and leaves an allow and
// a linked result; get-sum is denied, answered with a tool error naming
// the reason and the log index, and leaves a committed deny.
func TestEverythingAllowedAndDenied(t *testing.T) {
	cmd := npmServer(t, "mcp-server-everything")
	d := startDev(t)
	g, cs := openGateway(t, gatewayOptions(t, d), &sdk.CommandTransport{Command: cmd})
	if g.Name() != "everything" {
		t.Fatalf("server name %q, want everything (from mcp-servers/everything)", g.Name())
	}
	from := d.size(t)

	res := call(t, cs, "echo", map[string]any{"message": "hello through ztlog"})
	if res.IsError {
		t.Fatalf("echo: tool error %q", textOf(res))
	}
	if got := textOf(res); !strings.Contains(got, "hello through ztlog") {
		t.Fatalf("echo answered %q; the server's echo did not run", got)
	}
	dec, di := d.findDecision(t, from, "mcp.tool.everything.echo")
	if dec.Effect != entry.Allow {
		t.Fatalf("decision %d: %s %v, want allow", di, dec.Effect, dec.Reasons)
	}
	if dec.Resource != "everything" {
		t.Fatalf("decision resource %q, want the server name", dec.Resource)
	}
	wantArgs, _ := api.ArgsDigest([]byte(`{"message":"hello through ztlog"}`))
	if dec.ArgsDigest != wantArgs {
		t.Fatalf("decision args_digest %s, want %s", dec.ArgsDigest, wantArgs)
	}
	if dec.Attestation == nil {
		t.Fatal("the decision carries no runtime attestation")
	}
	if got := dec.Attestation.Claims["tool.manifestDigest"]; got != g.Manifest() {
		t.Fatalf("attested tool manifest %s, want the digest of the upstream's tools/list %s", got, g.Manifest())
	}
	if got := dec.Attestation.Claims["tool.name"]; got != "echo" {
		t.Fatalf("attested tool name %q, want echo", got)
	}
	r, ri := d.resultOf(t, di)
	if r.Outcome != "ok" {
		t.Fatalf("result %d outcome %q, want ok", ri, r.Outcome)
	}
	if r.ExitStatus == nil || *r.ExitStatus != mcp.ExitOK {
		t.Fatalf("result %d exit status %v, want %d", ri, r.ExitStatus, mcp.ExitOK)
	}
	if r.ActionDigest != dec.ActionDigest {
		t.Fatalf("result action digest %s, decision's %s", r.ActionDigest, dec.ActionDigest)
	}
	if r.Broker != "spiffe://dev.ztlog.local/broker/demo" {
		t.Fatalf("result signed by %s, want the gateway's broker", r.Broker)
	}
	// The client's copy carries what the gateway's own server adds (_meta
	// serverInfo); the tool's answer is the rest.
	answer := &sdk.CallToolResult{Content: res.Content, StructuredContent: res.StructuredContent, IsError: res.IsError}
	if got, want := r.Statement.Claims["stdout.digest"], entry.Digest(mcp.ResultBytes(answer)); got != want {
		t.Fatalf("result output digest %s, want the digest of the tool's answer %s", got, want)
	}

	from = d.size(t)
	res = call(t, cs, "get-sum", map[string]any{"a": 1, "b": 2})
	if !res.IsError {
		t.Fatalf("get-sum was not refused: %q", textOf(res))
	}
	msg := textOf(res)
	if !strings.Contains(msg, "policy.deny") {
		t.Fatalf("deny text %q does not name the reason code policy.deny", msg)
	}
	if !strings.HasPrefix(msg, "ztlog: denied mcp.tool.everything.get-sum on everything") {
		t.Fatalf("deny text %q", msg)
	}
	idx := logIndex(t, msg)
	deny := d.decision(t, idx)
	if deny.Effect != entry.Deny {
		t.Fatalf("entry %d (named by the tool error) is %s, want deny", idx, deny.Effect)
	}
	if deny.Action != "mcp.tool.everything.get-sum" {
		t.Fatalf("entry %d is about %s", idx, deny.Action)
	}
	if idx < from {
		t.Fatalf("deny at %d is older than the call (log size %d before it)", idx, from)
	}
}

// TestFilesystemDeniedWriteNeverReachesServer: server-filesystem's
// write_file, with its resource mapped to the path argument, is denied by
// the example policy; the file is never created (the server never got the
// call) and the committed deny names the path as resource.
func TestFilesystemDeniedWriteNeverReachesServer(t *testing.T) {
	root := t.TempDir()
	cmd := npmServer(t, "mcp-server-filesystem", root)
	d := startDev(t)
	m, err := mcp.ParseMapping([]byte(`{"server":"filesystem","tools":{"write_file":{"resource":"/path"},"read_text_file":{"resource":"/path"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	o := gatewayOptions(t, d)
	o.Mapping = m
	_, cs := openGateway(t, o, &sdk.CommandTransport{Command: cmd})
	target := filepath.Join(root, "written-by-agent.txt")
	res := call(t, cs, "write_file", map[string]any{"path": target, "content": "should never be written"})
	if !res.IsError {
		t.Fatalf("write_file was not refused: %q", textOf(res))
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("%s exists after a denied write_file (stat: %v): the call reached the server", target, err)
	}
	idx := logIndex(t, textOf(res))
	deny := d.decision(t, idx)
	if deny.Effect != entry.Deny {
		t.Fatalf("entry %d is %s, want deny", idx, deny.Effect)
	}
	if deny.Resource != target {
		t.Fatalf("deny resource %q, want the path argument %q", deny.Resource, target)
	}
	if deny.Action != "mcp.tool.filesystem.write_file" {
		t.Fatalf("deny action %q", deny.Action)
	}
}

// The arguments' digest is committed, never their values.
func TestArgumentValuesAreNotCommitted(t *testing.T) {
	d := startDev(t)
	up := newCountingServer()
	_, cs := openGateway(t, gatewayOptions(t, d), up.transport(t))
	from := d.size(t)
	secret := "value-that-must-not-be-in-the-log-7d1f"
	res := call(t, cs, "echo", map[string]any{"message": secret})
	if res.IsError {
		t.Fatalf("echo: %q", textOf(res))
	}
	_, di := d.findDecision(t, from, "mcp.tool.counting.echo")
	for i := di; i < d.size(t); i++ {
		raw, _ := json.Marshal(d.Entry(t, i))
		if strings.Contains(string(raw), secret) {
			t.Fatalf("entry %d contains the argument value", i)
		}
	}
}

// TestEverythingOverStreamableHTTP: the gateway in Streamable HTTP mode on
// both sides, in front of server-everything's own Streamable HTTP
// transport.
func TestEverythingOverStreamableHTTP(t *testing.T) {
	addr := devproc.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := npmServer(t, "mcp-server-everything", "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+port)
	var stderr devproc.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "listening on port") {
		if time.Now().After(deadline) {
			t.Fatalf("server-everything (streamableHttp) did not start:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := startDev(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, closeGW, err := mcp.Open(ctx, gatewayOptions(t, d), &sdk.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeGW()
	front := serveHTTP(t, g.Handler())
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "http-agent", Version: "1"}, nil).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: front}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	from := d.size(t)
	res := call(t, cs, "echo", map[string]any{"message": "streamed"})
	if res.IsError || !strings.Contains(textOf(res), "streamed") {
		t.Fatalf("echo answered %q (error %v)", textOf(res), res.IsError)
	}
	dec, di := d.findDecision(t, from, "mcp.tool.everything.echo")
	if dec.Effect != entry.Allow {
		t.Fatalf("decision %d is %s", di, dec.Effect)
	}
	if r, _ := d.resultOf(t, di); r.Outcome != "ok" {
		t.Fatalf("result outcome %q", r.Outcome)
	}
	res = call(t, cs, "get-env", map[string]any{})
	if !res.IsError || !strings.Contains(textOf(res), "policy.deny") {
		t.Fatalf("get-env answered %q (error %v), want a deny", textOf(res), res.IsError)
	}
	if strings.Contains(textOf(res), "PATH") {
		t.Fatal("get-env's answer (the server's environment) came back: the denied call was forwarded")
	}
}
