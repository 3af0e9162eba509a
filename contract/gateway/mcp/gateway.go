// Package mcp is ztlog's MCP gateway: it stands between an MCP client and
// an MCP server and turns every tools/call into a committed decision
// before the call is forwarded. The mapping from MCP to the adapter
// contract — action names, the resource mapping file, the tool manifest
// digest, the result, the error texts — is specified in gateway.md next to
// this file.
//
// The gateway speaks MCP through the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) on both sides: downstream it is
// an MCP server showing the upstream's tools (stdio or Streamable HTTP),
// upstream an MCP client of the real server (a child process over stdio,
// or a Streamable HTTP endpoint). For each tools/call it
//
//  1. maps the call to an action: mcp.tool.<server>.<tool>, the resource
//     (a JSON pointer into the arguments, or the server name), the
//     arguments (sent for guardrail inspection; only their digest is
//     committed), and a runtime attestation whose tool manifest digest is
//     the digest of the upstream's tools/list answer;
//  2. decides it through the Go SDK (contract/client), as the agent whose
//     X.509-SVID it holds, with the receipt addressed to its broker;
//  3. on a deny, answers a tool error (isError true) naming the reason
//     codes and the log index, and forwards nothing;
//  4. on an allow, acts as the broker of the call (contract/broker
//     Perform): verifies the receipt (JWKS, issuer, audience = its broker
//     SVID, expiry, action digest, one-time id), forwards the call, signs a
//     broker result (digest of the answer, isError, start and end) linked
//     to the decision, and reports it: through Open's outbox courier the
//     answer goes back once the result is kept on disk (synced), and the
//     result is committed right after, in the background, retried until
//     the log has it, across restarts.
//
// Anything that is not a verified allow — ztlog unreachable, not
// committing, an answer that does not verify, a refused receipt — is a
// tool error; the call is never forwarded.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/jcs"
	"github.com/zt-infra/ztlog/internal/slogx"
	"github.com/zt-infra/ztlog/internal/text"
)

// Version is the gateway's MCP implementation version.
const Version = "1"

// DefaultResultTimeout bounds signing and committing the result of a
// forwarded call after the call returned.
const DefaultResultTimeout = 30 * time.Second

// Config wires a gateway. Client, Broker and Runtime.Model/Code are
// required.
type Config struct {
	// Client decides, as the agent (its X.509-SVID is the actor).
	Client *client.Client
	// Broker performs the allowed calls; its SPIFFE ID is the receipts'
	// audience and it signs the results.
	Broker *broker.Broker
	// Mapping maps resources and filters tools/list (nil: every resource
	// is the server name, every tool is shown).
	Mapping *Mapping
	// ServerName names the upstream in action names; default
	// Mapping.Server, else ServerName of the upstream's implementation
	// name.
	ServerName string
	// Runtime is the runtime context attested with every call: Model and
	// Code are required; Tool is filled per call (name, manifest digest),
	// Broker and validity by the SDK.
	Runtime attest.RuntimeContext
	// DigestOnly sends only the arguments' digest, not their values (no
	// guardrail inspection).
	DigestOnly bool
	// ResultTimeout bounds signing and reporting a result (default
	// DefaultResultTimeout). A call is answered once Broker's Reporter
	// returned: with a Courier (Open's default) when the signed result is
	// kept durably in the outbox, with an outbox Reporter or HTTPReporter
	// when the log committed it.
	ResultTimeout time.Duration
	// PolicyWatchInterval, with filter_tools "policy", is how often the
	// gateway asks /v1/actions/possible again about the tools it shows, to
	// tell connected clients (notifications/tools/list_changed) when the
	// policy in force now hides other tools. Default PossibleTTL; at least
	// MinPolicyWatchInterval. A decision under a new policy hash makes it
	// ask at once.
	PolicyWatchInterval time.Duration
	// Observe, when set, is given the timing of every forwarded call (for
	// metrics and benchmarks).
	Observe func(CallTiming)
	Logger  *slog.Logger
}

// CallTiming is where the time of one forwarded call went.
type CallTiming struct {
	// Decide is the decision (committed, answer verified); Broker the
	// broker's checks of the receipt and the one-time id's record;
	// Upstream the forwarded call; Result signing the result and reporting
	// it (keeping it in the outbox, or committing it); Total all of it,
	// from the call's arrival to the answer.
	Decide, Broker, Upstream, Result, Total time.Duration
}

// Gateway is a running gateway: one upstream session, one downstream MCP
// server that may serve many sessions. Safe for concurrent use.
type Gateway struct {
	cfg      Config
	server   *sdk.Server
	upstream *sdk.ClientSession
	name     string
	agent    string

	mu       sync.Mutex
	manifest string
	tools    map[string]*sdk.Tool // upstream tools shown downstream, by name
	hidden   int
	refresh  sync.Mutex   // one tools/list refresh at a time
	capture  *listCapture // the raw tools/list answers

	// ready is closed when New returns; up is true if it succeeded. A
	// list_changed notification can arrive while New is still connecting
	// (before upstream and server are set): its refresh waits for ready.
	ready chan struct{}
	up    bool

	// possibles caches /v1/actions/possible (filter_tools "policy"); shown
	// holds the answers behind what clients were last shown; watch is the
	// policy watcher (nil without filter_tools "policy").
	possibles possibleCache
	asking    sync.Mutex // one /v1/actions/possible question at a time
	shown     shownAnswers
	watch     *policyWatch
	// limited logs warnings that repeat while ztlog does not answer (an
	// unfiltered tools/list, the policy watcher's failed checks): each
	// once per watchLogEvery.
	limited *slog.Logger
}

// New connects to the upstream over t, lists its tools and builds the
// downstream server. The gateway owns the upstream session: Close ends it
// (and a child process started by a CommandTransport).
func New(ctx context.Context, cfg Config, t sdk.Transport) (*Gateway, error) {
	if cfg.Client == nil || cfg.Broker == nil {
		return nil, errors.New("mcp gateway: Client and Broker are required")
	}
	probe := cfg.Runtime
	now := time.Now()
	probe.IssuedAt, probe.ExpiresAt = attest.FormatTime(now), attest.FormatTime(now.Add(time.Minute))
	probe.Tool = &attest.Tool{Name: "probe", ManifestDigest: entry.Digest(nil)}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("mcp gateway: runtime context: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResultTimeout <= 0 {
		cfg.ResultTimeout = DefaultResultTimeout
	}
	if cfg.Mapping != nil {
		if err := cfg.Mapping.Validate(); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.PolicyWatchInterval == 0:
		cfg.PolicyWatchInterval = PossibleTTL
	case cfg.PolicyWatchInterval < MinPolicyWatchInterval:
		return nil, fmt.Errorf("mcp gateway: policy watch interval %v: want at least %v (or 0 for the default, %v)",
			cfg.PolicyWatchInterval, MinPolicyWatchInterval, PossibleTTL)
	}
	if cfg.ServerName != "" && !serverNamePattern.MatchString(cfg.ServerName) {
		return nil, fmt.Errorf("mcp gateway: server name %q: want 1 to 64 letters, digits, _ or -", text.Cut(cfg.ServerName, 80))
	}
	agent := cfg.Client.ID()
	if agent.IsZero() {
		return nil, errors.New("mcp gateway: the agent has no SVID")
	}
	g := &Gateway{cfg: cfg, agent: agent.String(), tools: map[string]*sdk.Tool{}, ready: make(chan struct{}),
		limited: slog.New(slogx.RateLimit(cfg.Logger.Handler(), watchLogEvery))}
	defer close(g.ready)
	c := sdk.NewClient(&sdk.Implementation{Name: "ztlog-mcp-gateway", Version: Version}, &sdk.ClientOptions{
		Capabilities: &sdk.ClientCapabilities{},
		ToolListChangedHandler: func(ctx context.Context, _ *sdk.ToolListChangedRequest) {
			// The SDK calls this on the session's reading goroutine: list
			// from another one.
			go func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				select {
				case <-g.ready:
				case <-rctx.Done():
					return
				}
				if !g.up {
					return // New failed: there is no gateway to refresh
				}
				if err := g.Refresh(rctx); err != nil {
					g.cfg.Logger.Error("tools/list after list_changed", "error", err.Error())
				}
			}()
		},
	})
	g.capture = &listCapture{pending: map[any]bool{}}
	up, err := c.Connect(ctx, &captureTransport{inner: t, c: g.capture}, nil)
	if err != nil {
		return nil, fmt.Errorf("mcp gateway: connecting to the upstream server: %w", err)
	}
	g.upstream = up
	init := up.InitializeResult()
	g.name = cfg.ServerName
	if g.name == "" && cfg.Mapping != nil {
		g.name = cfg.Mapping.Server
	}
	impl := &sdk.Implementation{Name: "ztlog-mcp-gateway", Version: Version}
	instructions := ""
	if init != nil && init.ServerInfo != nil {
		if g.name == "" {
			g.name = ServerName(init.ServerInfo.Name)
		}
		impl = &sdk.Implementation{Name: init.ServerInfo.Name + " (via ztlog)", Title: init.ServerInfo.Title, Version: init.ServerInfo.Version}
		instructions = init.Instructions
	}
	if g.name == "" {
		g.name = ServerName("")
	}
	g.server = sdk.NewServer(impl, &sdk.ServerOptions{
		Instructions: instructions,
		Logger:       cfg.Logger,
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
	})
	// A client listing tools sees the upstream's current list, and the
	// manifest digest follows it.
	g.server.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if method != "tools/list" {
				return next(ctx, method, req)
			}
			if err := g.Refresh(ctx); err != nil {
				return nil, fmt.Errorf("ztlog gateway: listing the upstream's tools: %w", err)
			}
			res, err := next(ctx, method, req)
			if lr, ok := res.(*sdk.ListToolsResult); ok && err == nil && g.cfg.Mapping.FiltersByPolicy() {
				return g.filterList(ctx, lr), nil
			}
			return res, err
		}
	})
	if err := g.Refresh(ctx); err != nil {
		up.Close()
		return nil, err
	}
	g.up = true // read after <-g.ready, which the deferred close publishes
	if cfg.Mapping.FiltersByPolicy() {
		g.startPolicyWatch(ctx, cfg.PolicyWatchInterval)
	}
	return g, nil
}

// Name is the server name in the gateway's action names.
func (g *Gateway) Name() string { return g.name }

// Manifest is the current tool manifest digest (ManifestDigest of the
// upstream's last tools/list answer, as it came over the wire).
func (g *Gateway) Manifest() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.manifest
}

// Server is the downstream MCP server (to run on any SDK transport).
func (g *Gateway) Server() *sdk.Server { return g.server }

// Serve serves one downstream session over t (stdio: &sdk.StdioTransport{})
// until the client disconnects or ctx ends.
func (g *Gateway) Serve(ctx context.Context, t sdk.Transport) error {
	ss, err := g.server.Connect(ctx, t, nil)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- ss.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		ss.Close()
		<-done
		return ctx.Err()
	}
}

// Handler serves the downstream side over Streamable HTTP. It does not
// authenticate MCP clients: every call is decided as the gateway's agent.
func (g *Gateway) Handler() http.Handler {
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return g.server }, nil)
}

// PolicyHash is the policy hash the latest answers of
// /v1/actions/possible were given under (filter_tools "policy"; "" before
// the first).
func (g *Gateway) PolicyHash() string { return g.possibles.policyHash() }

// Close stops the policy watcher and ends the upstream session.
func (g *Gateway) Close() error {
	g.watch.cancel()
	err := g.upstream.Close()
	g.watch.wait()
	return err
}

// Refresh lists the upstream's tools, recomputes the manifest digest and
// updates the tools shown downstream (connected clients are told the list
// changed).
func (g *Gateway) Refresh(ctx context.Context) error {
	g.refresh.Lock()
	defer g.refresh.Unlock()
	var tools []*sdk.Tool
	var pages [][]byte
	g.capture.take()
	params := &sdk.ListToolsParams{}
	for {
		r, err := g.upstream.ListTools(ctx, params)
		if err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		raw := g.capture.take()
		if len(raw) != 1 {
			return fmt.Errorf("tools/list: %w", errNoCapture)
		}
		pages = append(pages, raw[0])
		tools = append(tools, r.Tools...)
		if r.NextCursor == "" {
			break
		}
		if len(pages) >= 100 {
			return errors.New("tools/list: more than 100 pages")
		}
		params = &sdk.ListToolsParams{Cursor: r.NextCursor}
	}
	digest, err := ManifestDigest(pages...)
	if err != nil {
		return err
	}
	g.mu.Lock()
	old := g.tools
	changed := digest != g.manifest
	g.manifest = digest
	g.mu.Unlock()
	if !changed && len(old) > 0 {
		return nil
	}
	shown := map[string]*sdk.Tool{}
	hidden := 0
	for _, t := range tools {
		if !toolNamePattern.MatchString(t.Name) || !g.cfg.Mapping.Exposed(Action(g.name, t.Name)) {
			hidden++
			continue
		}
		if err := g.addTool(t); err != nil {
			g.cfg.Logger.Warn("upstream tool not shown", "tool", t.Name, "error", err.Error())
			hidden++
			continue
		}
		shown[t.Name] = t
	}
	var gone []string
	for name := range old {
		if _, ok := shown[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		g.server.RemoveTools(gone...)
	}
	g.mu.Lock()
	g.tools, g.hidden = shown, hidden
	g.mu.Unlock()
	g.cfg.Logger.Info("upstream tools", "server", g.name, "shown", len(shown), "hidden", hidden, "manifest", digest)
	return nil
}

// addTool shows t downstream; the SDK refuses (panics on) schemas it
// cannot serve, which is an error here.
func (g *Gateway) addTool(t *sdk.Tool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	name := t.Name
	g.server.AddTool(t, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return g.call(ctx, name, req.Params.Arguments)
	})
	return nil
}

// Tool error texts (gateway.md). Each starts with "ztlog: ".
func deniedText(action, resource string, d *client.Decision) string {
	var codes []string
	for _, r := range d.Response.Reasons {
		codes = append(codes, r.Code+" ("+r.Message+")")
	}
	return fmt.Sprintf("ztlog: denied %s on %s: %s; log index %d, correlation id %s. The call was not forwarded.",
		action, resource, strings.Join(codes, ", "), d.Response.Log.Index, d.CorrelationID)
}

func toolError(format string, a ...any) *sdk.CallToolResult {
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf(format, a...)}}}
}

// call is one tools/call: decide, then perform through the broker.
func (g *Gateway) call(ctx context.Context, tool string, args json.RawMessage) (*sdk.CallToolResult, error) {
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	action := Action(g.name, tool)
	resource, err := g.cfg.Mapping.Resource(g.name, tool, args)
	if err != nil {
		return toolError("ztlog: no decision for %s: %v. The call was not forwarded.", action, err), nil
	}
	argsDigest, err := api.ArgsDigest(args)
	if err != nil {
		return toolError("ztlog: no decision for %s: the arguments are not JSON: %v. The call was not forwarded.", action, err), nil
	}
	rt := g.cfg.Runtime
	rt.Tool = &attest.Tool{ManifestDigest: g.Manifest(), Name: tool}
	req := client.Request{Action: action, Resource: resource, Broker: g.cfg.Broker.ID().String(), Runtime: &rt, ArgsDigest: argsDigest}
	if !g.cfg.DigestOnly {
		req.Args = args
	}
	t0 := time.Now()
	d, err := g.cfg.Client.Decide(ctx, req)
	decided := time.Now()
	if err != nil {
		g.cfg.Logger.Warn("no decision; call not forwarded", "action", action, "error", err.Error())
		return toolError("ztlog: no decision for %s on %s: %v. The call was not forwarded.", action, resource, err), nil
	}
	if g.possibles.notePolicy(d.Response.Policy.Hash) {
		g.nudgePolicyWatch() // another policy is in force: ask again now
	}
	if !d.Allow || d.Receipt == nil {
		g.cfg.Logger.Info("denied; call not forwarded", "action", action, "log_index", d.Response.Log.Index)
		return toolError("%s", deniedText(action, resource, d)), nil
	}
	var res *sdk.CallToolResult
	var callErr error
	var start, end time.Time
	// The result is kept (and committed) even when the client gave up on
	// the call.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ResultTimeout)
	defer cancel()
	forwarded := false
	rep, err := g.cfg.Broker.Perform(rctx, &broker.Call{Receipt: d.Token, Action: action, Resource: resource, ArgsDigest: argsDigest,
		Caller: g.agent, Sandbox: attest.SandboxApplied{Kind: "none", Capabilities: entry.Digest(nil),
			Applied: []string{"mcp.forward " + g.name + "/" + tool}}},
		func(context.Context) broker.CallOutcome {
			forwarded = true
			start = time.Now()
			res, callErr = g.upstream.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
			end = time.Now()
			// Digest the answer before the downstream server annotates it.
			return outcome(res, callErr, start, end)
		})
	if !forwarded {
		// Perform returned before forwarding: the broker refused.
		if ref, ok := broker.AsRefused(err); ok {
			return toolError("ztlog: allowed (log index %d), but the gateway's broker refused the receipt (%s): %s. The call was not forwarded.",
				d.Response.Log.Index, ref.Code, ref.Message), nil
		}
		return toolError("ztlog: allowed (log index %d), but the gateway's broker failed: %v. The call was not forwarded.", d.Response.Log.Index, err), nil
	}
	kept := time.Now()
	if g.cfg.Observe != nil {
		g.cfg.Observe(CallTiming{Decide: decided.Sub(t0), Broker: start.Sub(decided), Upstream: end.Sub(start),
			Result: kept.Sub(end), Total: kept.Sub(t0)})
	}
	switch {
	case rep.ReportError != nil:
		// Signed but neither kept nor committed: say so loudly; the
		// client still gets the answer (the call ran).
		g.cfg.Logger.Error("call forwarded; its result is NOT committed", "action", action, "log_index", d.Response.Log.Index, "error", rep.ReportError.Error())
	case rep.Queued:
		g.cfg.Logger.Info("call forwarded; result kept in the outbox", "action", action, "log_index", d.Response.Log.Index)
	case rep.Result != nil:
		g.cfg.Logger.Info("call forwarded; result committed", "action", action, "log_index", d.Response.Log.Index, "result_index", rep.Result.Log.Index)
	}
	if callErr != nil {
		return nil, callErr
	}
	return res, nil
}

// Exit statuses of a forwarded call in its broker result (gateway.md).
const (
	ExitOK        = 0 // the tool answered, isError false
	ExitToolError = 1 // the tool answered with isError true
	ExitNoAnswer  = 2 // no tool result: a JSON-RPC error or the upstream failed
)

// outcome is the broker-result outcome of a forwarded call: stdout is the
// digest and size of the tool result (its JCS form), stderr of the error
// text when there was no result.
func outcome(res *sdk.CallToolResult, err error, start, end time.Time) broker.CallOutcome {
	o := broker.CallOutcome{StartedAt: start, FinishedAt: end, Stdout: output(nil), Stderr: output(nil)}
	switch {
	case err != nil:
		o.Outcome, o.Exit.Status = attest.OutcomeFailed, ExitNoAnswer
		o.Stderr = output([]byte(err.Error()))
	default:
		o.Outcome, o.Exit.Status = attest.OutcomeOK, ExitOK
		if res.IsError {
			o.Outcome, o.Exit.Status = attest.OutcomeFailed, ExitToolError
		}
		o.Stdout = output(ResultBytes(res))
	}
	return o
}

// ResultBytes is the JCS form of a tool result as the gateway digests it
// (nil if it cannot be encoded).
func ResultBytes(res *sdk.CallToolResult) []byte {
	raw, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	c, err := jcs.Canonicalize(raw)
	if err != nil {
		return nil
	}
	return c
}

func output(b []byte) attest.Output {
	return attest.Output{Digest: entry.Digest(b), Size: int64(len(b))}
}
