// Package a2a is the A2A gate: an HTTP proxy in front of an A2A agent
// (protocol v0.3, JSON-RPC transport) that decides every message sent to
// the agent through ztlog before forwarding it, and commits what came of
// it as a broker result. The mapping and the answers are specified in
// gateway.md next to this file.
//
// A message/send or message/stream request becomes a decision (action
// "a2a.<agent>.<skill>", resource the agent card's url, the params sent
// for guardrail inspection) asked with the Go SDK as the gate's agent
// identity, for the gate's own broker identity. Only a verified allow is
// forwarded; the gate then acts as that broker: it signs a broker-result
// statement (digest and size of the agent's answer, ok or failed, start
// and end) linked to the decision and commits it to POST /v1/results, as
// `zt broker` does. A deny, a service that cannot be reached or does not
// commit, or an answer that does not verify: the client gets a JSON-RPC
// error and nothing is forwarded.
package a2a

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// CardPath is where an A2A agent publishes its card (v0.3).
const CardPath = "/.well-known/agent-card.json"

// MaxBody is the largest JSON-RPC request accepted, in bytes.
const MaxBody = 1 << 20

// Decider decides an action: *client.Client.
type Decider interface {
	Decide(ctx context.Context, req client.Request) (*client.Decision, error)
}

// Config wires a gate.
type Config struct {
	// Upstream is the A2A agent's base URL; its card is at
	// Upstream+CardPath, and messages go to the card's url.
	Upstream string
	// Agent is the agent's name in actions (default: AgentName of the
	// card's name).
	Agent string
	// Decider asks ztlog (the Go SDK client, acting as the gate's agent
	// identity). Required.
	Decider Decider
	// Broker is the gate's broker identity: decisions are asked for it,
	// results signed with it. Required.
	Broker x509svid.Source
	// Reporter commits the signed results (broker.HTTPReporter with a
	// client presenting Broker). Required.
	Reporter broker.Reporter
	// HTTPClient reaches the upstream agent (default: a client with a
	// 5-minute timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Gateway is the gate: an http.Handler serving the agent card (rewritten
// to point at the gate) and the JSON-RPC endpoint.
type Gateway struct {
	cfg     Config
	card    *Card
	rawCard map[string]any
	agent   string
	rpcURL  string // the upstream JSON-RPC endpoint
	rpcPath string // the path the gate serves it at
	broker  string
}

// New reads the upstream's agent card and builds the gate.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Upstream == "" || cfg.Decider == nil || cfg.Broker == nil || cfg.Reporter == nil {
		return nil, errors.New("a2a: Upstream, Decider, Broker and Reporter are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Minute}
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	svid, err := cfg.Broker.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("a2a: broker SVID: %w", err)
	}
	g := &Gateway{cfg: cfg, broker: svid.ID.String()}
	if err := g.readCard(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) readCard(ctx context.Context) error {
	cardURL := strings.TrimSuffix(g.cfg.Upstream, "/") + CardPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cardURL, nil)
	if err != nil {
		return fmt.Errorf("a2a: upstream %q: %w", g.cfg.Upstream, err)
	}
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("a2a: reading the agent card at %s: %w", cardURL, err)
	}
	defer resp.Body.Close()
	raw, err := httperr.ReadBody(resp.Body, MaxBody)
	if err != nil {
		return fmt.Errorf("a2a: reading the agent card at %s: HTTP %d: %w", cardURL, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("a2a: reading the agent card at %s: HTTP %d", cardURL, resp.StatusCode)
	}
	var card Card
	if err := json.Unmarshal(raw, &card); err != nil {
		return fmt.Errorf("a2a: the agent card at %s is not JSON: %w", cardURL, err)
	}
	json.Unmarshal(raw, &g.rawCard)
	u, err := url.Parse(card.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("a2a: the agent card at %s: url %q is not an http(s) URL", cardURL, card.URL)
	}
	g.card, g.rpcURL = &card, card.URL
	g.rpcPath = u.EscapedPath()
	if g.rpcPath == "" {
		g.rpcPath = "/"
	}
	g.agent = g.cfg.Agent
	if g.agent == "" {
		g.agent = AgentName(card.Name)
	}
	return nil
}

// Agent is the agent's name in actions.
func (g *Gateway) Agent() string { return g.agent }

// Card is the upstream agent card as read.
func (g *Gateway) Card() *Card { return g.card }

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && (r.URL.Path == CardPath || r.URL.Path == "/.well-known/agent.json"):
		g.serveCard(w, r)
	case r.Method == http.MethodPost && r.URL.Path == g.rpcPath:
		g.serveRPC(w, r)
	default:
		http.Error(w, fmt.Sprintf("zt a2a: no endpoint %s %s (the agent card is at %s, JSON-RPC at POST %s)", r.Method, r.URL.Path, CardPath, g.rpcPath), http.StatusNotFound)
	}
}

// serveCard serves the upstream's card with its url pointing at the gate,
// JSON-RPC as the only transport.
func (g *Gateway) serveCard(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	card := map[string]any{}
	for k, v := range g.rawCard {
		card[k] = v
	}
	self := scheme + "://" + r.Host + g.rpcPath
	card["url"] = self
	card["preferredTransport"] = "JSONRPC"
	card["additionalInterfaces"] = []any{map[string]any{"url": self, "transport": "JSONRPC"}}
	delete(card, "signatures") // the card is no longer the one signed
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(card)
}

// rpcRequest is a JSON-RPC 2.0 request.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

func (g *Gateway) serveRPC(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return
	}
	var req rpcRequest
	if len(body) > MaxBody {
		writeError(w, nil, false, CodeInvalidRequest, fmt.Sprintf("request larger than %d bytes", MaxBody), nil)
		return
	}
	if err := json.Unmarshal(body, &req); err != nil || req.JSONRPC != "2.0" || req.Method == "" {
		writeError(w, req.ID, false, CodeInvalidRequest, "not a JSON-RPC 2.0 request object (batches are not accepted)", nil)
		return
	}
	stream := req.Method == MethodStream
	call, err := Map(g.card, g.agent, req.Method, req.Params)
	switch {
	case errors.Is(err, ErrMethodNotGated):
		writeError(w, req.ID, false, CodeMethodNotFound, "zt a2a: "+err.Error(), nil)
		return
	case err != nil:
		writeError(w, req.ID, stream, CodeInvalidParams, "zt a2a: "+err.Error(), nil)
		return
	case !call.Gated:
		g.forward(w, r, body, nil)
		return
	}
	d, err := g.cfg.Decider.Decide(r.Context(), client.Request{Action: call.Action, Resource: call.Resource,
		Args: call.Params, Broker: g.broker})
	if err == nil && d.Allow && d.Assurance == client.Witnessed {
		// The gate acts as the broker, and a broker verifies a witnessed
		// receipt's cosigned checkpoint under a trust policy
		// (receipt.md, step 7); the SDK leaves that to it. The gate holds
		// no trust policy, so it refuses (fail closed).
		err = errors.New("the receipt is witnessed, and this gate has no trust policy to check its cosigned checkpoint")
	}
	var denied *client.DeniedError
	switch {
	case err == nil && (!d.Allow || d.Receipt == nil):
		denied = &client.DeniedError{Decision: d}
	case err != nil:
		g.cfg.Logger.Warn("a2a: no decision; not forwarded", "action", call.Action, "error", err.Error())
		writeError(w, req.ID, stream, CodeNoDecision, "zt a2a: no decision, not forwarded (fail closed): "+err.Error(),
			map[string]any{"action": call.Action})
		return
	}
	if denied != nil {
		resp := denied.Decision.Response
		g.cfg.Logger.Info("a2a: denied; not forwarded", "action", call.Action, "log_index", resp.Log.Index)
		writeError(w, req.ID, stream, CodeDenied, "zt a2a: "+denied.Error(), map[string]any{
			"action": call.Action, "resource": call.Resource, "decision": resp.Decision, "reasons": resp.Reasons,
			"log_index": resp.Log.Index, "leaf_hash": resp.Log.LeafHash, "correlation_id": resp.CorrelationID})
		return
	}
	g.forward(w, r, body, d)
}

// forward sends the request upstream and copies the answer back (a
// stream as it comes); for a decided call it then commits the result.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, body []byte, d *client.Decision) {
	started := g.cfg.Now()
	out := &digestWriter{w: w}
	status, ferr := g.proxy(r, body, out)
	if d == nil {
		return
	}
	g.commitResult(r.Context(), d, started, g.cfg.Now(), out, status, ferr)
}

func (g *Gateway) proxy(r *http.Request, body []byte, out *digestWriter) (int, error) {
	ctx := context.WithoutCancel(r.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.rpcURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for _, h := range []string{"Content-Type", "Accept", "Authorization", "X-A2A-Extensions"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		var id json.RawMessage
		var rr rpcRequest
		if json.Unmarshal(body, &rr) == nil {
			id = rr.ID
		}
		writeError(out.w, id, false, CodeUpstream, "zt a2a: the agent cannot be reached: "+err.Error(), nil)
		return 0, err
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control", "X-A2A-Extensions"} {
		if v := resp.Header.Get(h); v != "" {
			w := out.w
			w.Header().Set(h, v)
		}
	}
	out.w.WriteHeader(resp.StatusCode)
	flusher, _ := out.w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			out.Write(buf[:n])
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return resp.StatusCode, nil
		}
		if rerr != nil {
			return resp.StatusCode, rerr
		}
	}
}
