package client_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/testutil/workloadtest"
)

func newClient(t *testing.T, s *contracttest.Server, url string, edit func(*client.Config)) *client.Client {
	t.Helper()
	svid := s.SVID(contracttest.AgentID)
	cfg := client.Config{URL: url, SVID: svid, Bundles: s.Src, ServerID: contracttest.ServerID,
		Broker: contracttest.BrokerID.String(), Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decisionAt(t *testing.T, s *contracttest.Server, i uint64) *entry.Decision {
	e, err := entry.Parse(s.Entry(i))
	if err != nil {
		t.Fatal(err)
	}
	return e.(*entry.Decision)
}

func TestGuardedCall(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	c := newClient(t, s, s.URL, nil)
	ran := false
	ctx := client.WithCorrelationID(context.Background(), "sdk-test-1")
	err := c.GuardedCall(ctx, client.Request{Action: "demo.echo", Resource: "demo://hello", Args: map[string]any{"text": "hi"}},
		func(ctx context.Context, d *client.Decision) error {
			ran = true
			if !d.Allow || d.Receipt == nil || d.Receipt.ActionDigest != d.ActionDigest || client.CorrelationID(ctx) != "sdk-test-1" {
				t.Errorf("decision %+v", d)
			}
			return nil
		})
	if err != nil || !ran {
		t.Fatalf("allow: ran %v, err %v", ran, err)
	}

	ran = false
	err = c.GuardedCall(context.Background(), client.Request{Action: "aws.ec2.terminate_instances", Resource: "i-demo"},
		func(context.Context, *client.Decision) error { ran = true; return nil })
	var denied *client.DeniedError
	if !errors.As(err, &denied) || ran || denied.Decision.Allow {
		t.Fatalf("deny: ran %v, err %v", ran, err)
	}
	if d := decisionAt(t, s, denied.Decision.Response.Log.Index); d.Effect != entry.Deny {
		t.Fatalf("committed %s", d.Effect)
	}

	// The helpers name MCP tool calls and A2A tasks as the ZT SDK does.
	for action, want := range map[string]string{client.MCPToolAction("search"): "mcp.tool.search", client.A2AAction("planner"): "a2a.planner.send_message"} {
		d, err := c.Decide(context.Background(), client.Request{Action: action, Resource: "r"})
		if err != nil || action != want || decisionAt(t, s, d.Response.Log.Index).Action != want {
			t.Fatalf("%s: %v", action, err)
		}
	}
}

// TestAttestedRequest: with a runtime context configured, each request
// carries a signed attestation the service verifies and commits.
func TestAttestedRequest(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	c := newClient(t, s, s.URL, func(cfg *client.Config) {
		cfg.Runtime = &attest.RuntimeContext{Model: attest.Model{Provider: "anthropic", Name: "claude-sonnet-4"},
			Code: attest.Code{Digest: "sha256:" + strings.Repeat("c0", 32)}}
	})
	m := capability.Strict(t.TempDir(), "echo")
	d, err := c.Decide(context.Background(), client.Request{Action: "shell.run", Resource: "demo://hello", Capabilities: m})
	if err != nil || !d.Allow {
		t.Fatalf("%v %+v", err, d)
	}
	e := decisionAt(t, s, d.Response.Log.Index)
	if e.Attestation == nil || e.Attestation.Claims["model.name"] != "claude-sonnet-4" || e.Attestation.Claims["sandbox.profile"] != "strict" {
		t.Fatalf("attestation %+v", e.Attestation)
	}
}

// stub is an HTTPS server with the service's identity that answers what
// the test says: a malicious or broken service, as the agent sees it.
type stub struct {
	url      string
	requests atomic.Int32
	mu       sync.Mutex
	cids     []string
	answer   func(w http.ResponseWriter, r *http.Request, n int)
}

func newStub(t *testing.T, s *contracttest.Server, answer func(w http.ResponseWriter, r *http.Request, n int)) *stub {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := &stub{url: "https://" + ln.Addr().String(), answer: answer}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/actions" {
			// Keys and origin come from the real service.
			resp, err := s.Client(nil).Get(s.URL + r.URL.Path)
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			defer resp.Body.Close()
			io.Copy(w, resp.Body)
			return
		}
		n := int(st.requests.Add(1))
		st.mu.Lock()
		st.cids = append(st.cids, r.Header.Get("X-Correlation-ID"))
		st.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		st.answer(w, r, n)
	})}
	go srv.Serve(tls.NewListener(ln, identity.ServerTLS(s.Src)))
	t.Cleanup(func() { srv.Close() })
	return st
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// TestFailClosed: whatever a broken or malicious service answers, fn runs
// only on a verified allow.
func TestFailClosed(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	real := newClient(t, s, s.URL, nil)
	ctx := client.WithCorrelationID(context.Background(), "fail-closed")
	req := client.Request{Action: "demo.echo", Resource: "demo://hello"}
	good, err := real.Decide(ctx, req)
	if err != nil || !good.Allow {
		t.Fatal(err)
	}
	other, err := real.Decide(ctx, client.Request{Action: "demo.other", Resource: "demo://hello"})
	if err != nil || !other.Allow {
		t.Fatal(err)
	}
	forgedKey, _ := receipt.GenerateKey("")
	rc, _ := receipt.Parse(good.Token)
	forged, _ := forgedKey.Sign(rc.Claims)
	mod := func(f func(r *api.ActionResponse)) api.ActionResponse {
		r := good.Response
		f(&r)
		return r
	}
	cases := []struct {
		name   string
		status int
		body   any
		delay  time.Duration
	}{
		{"receipt signed by another key", 200, mod(func(r *api.ActionResponse) { r.Receipt = forged }), 0},
		{"receipt tampered", 200, mod(func(r *api.ActionResponse) { r.Receipt = strings.Replace(r.Receipt, ".", ".e30", 1) }), 0},
		{"no receipt", 200, mod(func(r *api.ActionResponse) { r.Receipt = "" }), 0},
		{"another action's allow", 200, other.Response, 0},
		{"another index", 200, mod(func(r *api.ActionResponse) { r.Log.Index++ }), 0},
		{"200 that says deny", 200, mod(func(r *api.ActionResponse) { r.Decision = "deny" }), 0},
		{"403 that says allow", 403, good.Response, 0},
		{"not JSON", 200, "allow", 0},
		{"server error", 500, httperr.Error{Code: "internal_error", Message: "x"}, 0},
		{"too slow", 200, good.Response, 6 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newStub(t, s, func(w http.ResponseWriter, r *http.Request, n int) {
				time.Sleep(tc.delay)
				writeJSON(w, tc.status, tc.body)
			})
			c := newClient(t, s, st.url, func(cfg *client.Config) { cfg.Retry.Attempts = 1 })
			ran := false
			err := c.GuardedCall(ctx, req, func(context.Context, *client.Decision) error { ran = true; return nil })
			if ran || err == nil {
				t.Fatalf("ran %v, err %v", ran, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestAnswerSizeLimit: the decision answer is read up to 1 MiB. An answer
// one byte longer is refused as too large (an ambiguous failure: it may
// hide a committed decision), not cut and then misread; one of exactly the
// limit is read whole.
func TestAnswerSizeLimit(t *testing.T) {
	const limit = 1 << 20 // client.go's maxDecisionAnswer
	s := contracttest.Start(t, contracttest.Options{})
	ctx := client.WithCorrelationID(context.Background(), "answer-size")
	req := client.Request{Action: "demo.echo", Resource: "demo://hello"}
	good, err := newClient(t, s, s.URL, nil).Decide(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(good.Response)
	if err != nil {
		t.Fatal(err)
	}
	// Trailing white space keeps the answer valid JSON: a cut read of it
	// would parse.
	padded := func(size int) []byte { return append(raw, strings.Repeat(" ", size-len(raw))...) }
	serve := func(body []byte) *client.Client {
		st := newStub(t, s, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})
		return newClient(t, s, st.url, func(cfg *client.Config) { cfg.Retry.Attempts = 1 })
	}

	t.Run("limit+1", func(t *testing.T) {
		_, err := serve(padded(limit+1)).Decide(ctx, req)
		var tl *httperr.TooLargeError
		if !errors.As(err, &tl) {
			t.Fatalf("Decide: err = %v, want a *httperr.TooLargeError", err)
		}
		if tl.Limit != limit {
			t.Errorf("TooLargeError.Limit = %d, want %d", tl.Limit, limit)
		}
		if !errors.Is(err, client.ErrAmbiguous) {
			t.Errorf("Decide: err = %v, want ErrAmbiguous", err)
		}
		if !strings.Contains(err.Error(), "POST /v1/actions") {
			t.Errorf("error %q does not name POST /v1/actions", err)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		d, err := serve(padded(limit)).Decide(ctx, req)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		if !d.Allow {
			t.Errorf("Decide: Allow = false, want the answer's allow")
		}
	})
}

// TestRetries: retried only when nothing can have been committed, always
// under one correlation id.
func TestRetries(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	real := newClient(t, s, s.URL, nil)
	ctx := client.WithCorrelationID(context.Background(), "retry-1")
	req := client.Request{Action: "demo.echo", Resource: "demo://hello"}
	good, err := real.Decide(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(code string) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n < 3 {
				writeJSON(w, 503, httperr.Error{Code: code, Message: "test"})
				return
			}
			writeJSON(w, 200, good.Response)
		}
	}
	// Pushback: nothing committed, retried, the third attempt answers.
	st := newStub(t, s, answer("log_pushback"))
	c := newClient(t, s, st.url, func(cfg *client.Config) { cfg.Retry = client.Retry{Attempts: 3, Base: time.Millisecond} })
	if d, err := c.Decide(ctx, req); err != nil || !d.Allow || st.requests.Load() != 3 {
		t.Fatalf("pushback: %v, %d requests", err, st.requests.Load())
	}
	for _, cid := range st.cids {
		if cid != "retry-1" {
			t.Fatalf("correlation ids %v", st.cids)
		}
	}
	// A commit timeout may have committed: not retried...
	st = newStub(t, s, answer("commit_timeout"))
	c = newClient(t, s, st.url, func(cfg *client.Config) { cfg.Retry = client.Retry{Attempts: 3, Base: time.Millisecond} })
	if _, err := c.Decide(ctx, req); !errors.Is(err, client.ErrAmbiguous) || st.requests.Load() != 1 {
		t.Fatalf("commit timeout: %v, %d requests", err, st.requests.Load())
	}
	// ...unless asked to, under the same correlation id.
	st = newStub(t, s, answer("commit_timeout"))
	c = newClient(t, s, st.url, func(cfg *client.Config) {
		cfg.Retry = client.Retry{Attempts: 3, Base: time.Millisecond, Ambiguous: true}
	})
	if d, err := c.Decide(ctx, req); err != nil || !d.Allow || st.requests.Load() != 3 || st.cids[0] != st.cids[2] {
		t.Fatalf("ambiguous retried: %v, %d requests %v", err, st.requests.Load(), st.cids)
	}
	// Nobody listening: retried, then no decision.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "https://" + ln.Addr().String()
	ln.Close()
	c = newClient(t, s, dead, func(cfg *client.Config) { cfg.Retry = client.Retry{Attempts: 2, Base: time.Millisecond} })
	if _, err := c.Decide(ctx, req); !errors.Is(err, client.ErrNoDecision) {
		t.Fatalf("dead service: %v", err)
	}
}

// TestCircuitBreaker: after consecutive failures the breaker denies without
// asking; after the cooldown one trial call goes through.
func TestCircuitBreaker(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	st := newStub(t, s, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 500, httperr.Error{Code: "internal_error", Message: "down"})
	})
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	c := newClient(t, s, st.url, func(cfg *client.Config) {
		cfg.Retry.Attempts = 1
		cfg.Breaker = client.Breaker{Failures: 3, Cooldown: time.Minute}
		cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	req := client.Request{Action: "demo.echo", Resource: "demo://hello"}
	for i := 0; i < 3; i++ {
		if _, err := c.Decide(context.Background(), req); !errors.Is(err, client.ErrNoDecision) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	ran := false
	err := c.GuardedCall(context.Background(), req, func(context.Context, *client.Decision) error { ran = true; return nil })
	if !errors.Is(err, client.ErrCircuitOpen) || ran || st.requests.Load() != 3 {
		t.Fatalf("open breaker: %v, %d requests", err, st.requests.Load())
	}
	now.Add(int64(2 * time.Minute))
	if _, err := c.Decide(context.Background(), req); !errors.Is(err, client.ErrNoDecision) || st.requests.Load() != 4 {
		t.Fatalf("trial call: %v, %d requests", err, st.requests.Load())
	}
	if _, err := c.Decide(context.Background(), req); !errors.Is(err, client.ErrCircuitOpen) {
		t.Fatalf("after a failed trial: %v", err)
	}
}

// TestWorkloadAPI: the agent's SVID and bundle come from the SPIFFE
// Workload API (an in-test server speaking go-spiffe's public interface).
func TestWorkloadAPI(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	wl, err := workloadtest.Start(dir, s.SVID(contracttest.AgentID), s.CA.X509Bundle(), s.CA.JWTBundle())
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Stop()
	src, err := client.FromWorkloadAPI(context.Background(), wl.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c, err := client.New(client.Config{URL: s.URL, SVID: src, Bundles: src, ServerID: contracttest.ServerID, Broker: contracttest.BrokerID.String()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Decide(context.Background(), client.Request{Action: "demo.echo", Resource: "demo://hello"})
	if err != nil || !d.Allow || d.Receipt.Subject != contracttest.AgentID.String() {
		t.Fatalf("%v %+v", err, d)
	}
}

// TestDefaultBroker: a request that names no broker is decided for the
// service's default broker (published at /.well-known/ztlog); the SDK
// names it too, so the allow verifies and the deny's digest matches.
func TestDefaultBroker(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	c := newClient(t, s, s.URL, func(cfg *client.Config) { cfg.Broker = "" })
	allow, err := c.Decide(context.Background(), client.Request{Action: "demo.echo", Resource: "demo://hello"})
	if err != nil {
		t.Fatalf("allow without a named broker: %v", err)
	}
	if !allow.Allow {
		t.Fatalf("demo.echo was denied: %+v", allow.Response.Reasons)
	}
	if got := allow.Receipt.Audience; got != contracttest.BrokerID.String() {
		t.Errorf("receipt audience %q, want the default broker %q", got, contracttest.BrokerID)
	}
	if got := decisionAt(t, s, allow.Response.Log.Index).Broker; got != contracttest.BrokerID.String() {
		t.Errorf("committed broker %q, want the default broker %q", got, contracttest.BrokerID)
	}
	deny, err := c.Decide(context.Background(), client.Request{Action: "aws.ec2.terminate_instances", Resource: "i-demo"})
	if err != nil {
		t.Fatalf("deny without a named broker: %v", err)
	}
	if deny.Allow {
		t.Fatal("aws.ec2.terminate_instances was allowed")
	}
}
