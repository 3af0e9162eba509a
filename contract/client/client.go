// Package client is the Go SDK of the adapter contract: an agent asks
// ztlog whether it may act, and acts only on a verified allow.
//
//	c, _ := client.New(client.Config{URL: "https://ztlog:8443", SVID: src, Bundles: src})
//	err := c.GuardedCall(ctx, client.Request{Action: client.MCPToolAction("search"), Resource: "web"},
//		func(ctx context.Context, d *client.Decision) error { return callTheTool(ctx) })
//
// Fail closed. Decide returns a Decision only for an answer it verified:
// an allow is HTTP 200 whose receipt verifies against the issuer's JWKS
// (signature, issuer, not expired), names the action digest the SDK
// computed itself from what it asked, and the log index and leaf hash the
// answer gives; a deny is HTTP 403 with a committed index. Anything else —
// a transport error, a timeout, a 4xx/5xx, an unparsable, unsigned or
// inconsistent answer — is an error, and GuardedCall never runs fn.
//
// Retries. Every attempt of one call carries the same correlation id
// (X-Correlation-ID; from the context, WithCorrelationID, or generated).
// A call is retried, with exponential backoff and jitter, only when
// nothing can have been committed: the connection failed before the
// request was written, or the service answered 503 log_pushback or
// shutting_down. When the outcome is ambiguous — the request was sent and
// the answer lost, or 503 commit_timeout, commit_failed, log_storage_error,
// internal_error — the decision may be in the log; the SDK returns
// ErrAmbiguous and does not decide again, unless Retry.Ambiguous is set, in
// which case it asks again under the same correlation id, so the log shows
// every attempt of the call together (each is its own committed decision;
// the SDK acts on the one answer it verified).
//
// Circuit breaker. After Breaker.Failures consecutive calls without a
// decision, the breaker opens for Breaker.Cooldown: calls fail at once
// with ErrCircuitOpen (no allow). Then one call is let through; a decision
// closes the breaker, another failure opens it again.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/correlation"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// MCPToolAction names the call of an MCP tool: "mcp.tool.<name>". For a
// tool of a named MCP server (what the MCP gateway, zt mcp, decides) name
// is "<server>.<tool>"; MCPServerToolAction says so.
func MCPToolAction(tool string) string { return "mcp.tool." + tool }

// MCPServerToolAction names the call of tool on the MCP server server:
// "mcp.tool.<server>.<tool>", the action the MCP gateway (zt mcp) decides
// for it, so that a policy written for the gateway (e.g. mcp.tool.*.echo)
// governs an agent that calls the tool through the SDK alike. server is
// one segment (no dots).
func MCPServerToolAction(server, tool string) string { return MCPToolAction(server + "." + tool) }

// A2AAction names sending a message to an A2A agent: "a2a.<agent>.send_message".
func A2AAction(agent string) string { return "a2a." + agent + ".send_message" }

// Errors. Every error of Decide and GuardedCall means: do not act.
var (
	// ErrNoDecision: no verified answer (wrapped with why).
	ErrNoDecision = errors.New("ztlog: no decision")
	// ErrAmbiguous: the request was sent but its outcome is unknown; the
	// decision may be committed. Not retried unless Retry.Ambiguous.
	ErrAmbiguous = errors.New("ztlog: outcome unknown (the decision may be committed)")
	// ErrCircuitOpen: too many recent failures; nothing was asked.
	ErrCircuitOpen = errors.New("ztlog: circuit breaker open")
)

// DeniedError is a committed deny: GuardedCall's error when the answer was
// a deny.
type DeniedError struct{ Decision *Decision }

func (e *DeniedError) Error() string {
	msg := "denied"
	if r := e.Decision.Response.Reasons; len(r) > 0 {
		msg += ": " + r[0].Code + ": " + r[0].Message
	}
	return fmt.Sprintf("ztlog: %s (log index %d)", msg, e.Decision.Response.Log.Index)
}

// Retry controls retries.
type Retry struct {
	// Attempts is the most attempts per call (default 3; 1 = no retry).
	Attempts int
	// Base and Max bound the backoff (defaults 100ms, 2s).
	Base, Max time.Duration
	// Ambiguous retries calls whose outcome is unknown, under the same
	// correlation id (see the package documentation).
	Ambiguous bool
}

// Breaker controls the circuit breaker.
type Breaker struct {
	// Failures is how many consecutive calls without a decision open it
	// (default 5; negative disables the breaker).
	Failures int
	// Cooldown is how long it stays open (default 30s).
	Cooldown time.Duration
}

// Config configures a Client. URL, SVID and Bundles are required.
type Config struct {
	// URL is the ztlog service, https://host:port.
	URL string
	// SVID is the agent's identity; Bundles the trust bundle. Both come
	// from the Workload API (identity.FromWorkloadAPI) or from files
	// (FromFiles).
	SVID    x509svid.Source
	Bundles x509bundle.Source
	// ServerID is the service's SPIFFE ID (zero: any member of the SVID's
	// trust domain).
	ServerID spiffeid.ID
	// Issuer is the log origin receipts must carry (default: read from
	// the service's /.well-known/ztlog over the authenticated connection).
	Issuer string
	// Broker is the broker of requests that name none (default: the
	// service's default_broker from /.well-known/ztlog).
	Broker string
	// Runtime, when set, is the runtime context the SDK attests for every
	// request (signed with SVID; subject, sandbox, broker and validity are
	// filled per request).
	Runtime *attest.RuntimeContext
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	Retry   Retry
	Breaker Breaker
	// HTTPClient overrides the mutual-TLS client built from SVID and
	// Bundles.
	HTTPClient *http.Client
	Now        func() time.Time
}

// Request is one action to decide.
type Request struct {
	Action   string
	Resource string
	// Args are argument values sent for guardrail inspection (never
	// stored); their JCS digest becomes ArgsDigest. Or send only
	// ArgsDigest.
	Args       any
	ArgsDigest string
	// Broker is the broker the receipt is for (default Config.Broker).
	Broker string
	// Capabilities is the manifest the work is to run under.
	Capabilities *capability.Manifest
	// UserToken is a delegated user's JWT (X-ZT-User-Token).
	UserToken string
	// Runtime overrides Config.Runtime for this request.
	Runtime *attest.RuntimeContext
}

// Decision is a verified answer.
type Decision struct {
	// Allow is true for a verified allow.
	Allow bool
	// Response is the service's answer.
	Response api.ActionResponse
	// Receipt is the verified receipt of an allow; Token its compact JWS.
	Receipt *receipt.Claims
	Token   string
	// Assurance is the level of a verified allow, Sequenced or Witnessed
	// (from its receipt); "" for a deny.
	Assurance string
	// ActionDigest is the digest the SDK computed and the answer confirmed.
	ActionDigest  string
	CorrelationID string
	// Raw is the service's answer as received (JSON).
	Raw []byte
}

// Client talks to one ztlog service. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	keys *receipt.HTTPKeys

	mu       sync.Mutex
	issuer   string
	info     *receipt.ServiceInfo // /.well-known/ztlog, once read
	failures int
	openTill time.Time
	trial    bool
}

// New builds a client. It does not contact the service.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.SVID == nil || cfg.Bundles == nil {
		return nil, errors.New("client: URL, SVID and Bundles are required")
	}
	if !strings.HasPrefix(cfg.URL, "https://") {
		// Over plain HTTP nothing is authenticated: the answer, the
		// issuer and the receipt keys would all come from whoever
		// answers at that address.
		return nil, fmt.Errorf("client: URL %q: the service must be reached over https:// (mutual TLS with its X.509-SVID)", cfg.URL)
	}
	svid, err := cfg.SVID.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("client: SVID: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry.Attempts = 3
	}
	if cfg.Retry.Base <= 0 {
		cfg.Retry.Base = 100 * time.Millisecond
	}
	if cfg.Retry.Max <= 0 {
		cfg.Retry.Max = 2 * time.Second
	}
	if cfg.Breaker.Failures == 0 {
		cfg.Breaker.Failures = 5
	}
	if cfg.Breaker.Cooldown <= 0 {
		cfg.Breaker.Cooldown = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	hc := cfg.HTTPClient
	if hc == nil {
		auth := tlsconfig.AuthorizeMemberOf(svid.ID.TrustDomain())
		if !cfg.ServerID.IsZero() {
			auth = tlsconfig.AuthorizeID(cfg.ServerID)
		}
		// A new transport per SVID: a kept connection would present the
		// SVID it was opened with after the Workload API rotated it.
		hc = &http.Client{Transport: identity.RotatingTransport(cfg.SVID, func() *http.Transport {
			return &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(cfg.SVID, cfg.Bundles, auth),
				MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
		})}
	}
	return &Client{cfg: cfg, http: hc, issuer: cfg.Issuer,
		keys: &receipt.HTTPKeys{Client: hc, URL: cfg.URL + "/v1/receipts/jwks.json"}}, nil
}

// FromFiles loads an agent identity from files: the X.509-SVID in
// prefix.pem (chain) and prefix.key (PKCS#8), and the trust bundle (PEM
// certificates or a SPIFFE bundle JSON). The result serves as both
// Config.SVID and Config.Bundles.
func FromFiles(prefix, bundle string) (identity.Source, error) {
	return identity.FromFiles(identity.Files{Cert: prefix + ".pem", Key: prefix + ".key", Bundle: bundle})
}

// FromWorkloadAPI reads the agent identity from the SPIFFE Workload API at
// addr ("" = $SPIFFE_ENDPOINT_SOCKET), waiting at most timeout for the
// first SVID; it keeps streaming rotations.
func FromWorkloadAPI(ctx context.Context, addr string, timeout time.Duration) (identity.Source, error) {
	return identity.FromWorkloadAPI(ctx, addr, timeout)
}

// ID is the agent's SPIFFE ID.
func (c *Client) ID() spiffeid.ID {
	svid, err := c.cfg.SVID.GetX509SVID()
	if err != nil {
		return spiffeid.ID{}
	}
	return svid.ID
}

type ctxKey struct{}

// WithCorrelationID returns ctx carrying a correlation id for the calls
// made with it.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// CorrelationID is the id WithCorrelationID stored, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// GuardedCall decides req and runs fn only on a verified allow. A deny is a
// *DeniedError; no decision is an error wrapping ErrNoDecision,
// ErrAmbiguous or ErrCircuitOpen. fn's own error is returned as is.
func (c *Client) GuardedCall(ctx context.Context, req Request, fn func(ctx context.Context, d *Decision) error) error {
	d, err := c.Decide(ctx, req)
	if err != nil {
		return err
	}
	if !d.Allow || d.Receipt == nil {
		return &DeniedError{Decision: d}
	}
	return fn(WithCorrelationID(ctx, d.CorrelationID), d)
}

// Decide asks for a decision and verifies the answer. It returns a
// Decision (Allow true or false) only for a verified, committed answer.
func (c *Client) Decide(ctx context.Context, req Request) (*Decision, error) {
	if err := c.admit(); err != nil {
		return nil, err
	}
	d, err := c.decide(ctx, req)
	c.record(err == nil)
	return d, err
}

// admit applies the circuit breaker.
func (c *Client) admit() error {
	if c.cfg.Breaker.Failures < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	switch {
	case c.openTill.IsZero():
		return nil
	case now.Before(c.openTill):
		return fmt.Errorf("%w until %s after %d calls without a decision", ErrCircuitOpen, c.openTill.Format(time.RFC3339), c.failures)
	case c.trial:
		return fmt.Errorf("%w: a trial call is in flight", ErrCircuitOpen)
	}
	c.trial = true // half-open: this call is the trial
	return nil
}

func (c *Client) record(ok bool) {
	if c.cfg.Breaker.Failures < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trial = false
	if ok {
		c.failures, c.openTill = 0, time.Time{}
		return
	}
	c.failures++
	if c.failures >= c.cfg.Breaker.Failures {
		c.openTill = c.cfg.Now().Add(c.cfg.Breaker.Cooldown)
	}
}

// attempt outcomes.
type failure struct {
	err   error
	retry bool // nothing can have been committed
	ambig bool // may have been committed
}

func (c *Client) decide(ctx context.Context, req Request) (*Decision, error) {
	self := c.ID()
	if self.IsZero() {
		return nil, fmt.Errorf("%w: the agent has no SVID", ErrNoDecision)
	}
	cid := CorrelationID(ctx)
	if cid == "" {
		cid = correlation.New()
	}
	body, act, digest, err := c.body(ctx, req, self, cid)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDecision, err)
	}
	var last failure
	for i := 0; i < c.cfg.Retry.Attempts; i++ {
		if i > 0 {
			if !(last.retry || (last.ambig && c.cfg.Retry.Ambiguous)) {
				break
			}
			if err := sleep(ctx, backoff(c.cfg.Retry, i)); err != nil {
				break
			}
		}
		d, f := c.attempt(ctx, body, cid, req.UserToken)
		if f == nil {
			if err := c.verify(ctx, d, req, digest, act.Broker, cid); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNoDecision, err)
			}
			return d, nil
		}
		last = *f
	}
	if last.ambig {
		return nil, fmt.Errorf("%w (correlation id %s): %w", ErrAmbiguous, cid, last.err)
	}
	return nil, fmt.Errorf("%w (correlation id %s): %w", ErrNoDecision, cid, last.err)
}

func backoff(r Retry, attempt int) time.Duration {
	d := r.Base << (attempt - 1)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// body builds the request body, the action digest the answer must carry,
// and the broker.
func (c *Client) body(ctx context.Context, req Request, self spiffeid.ID, cid string) ([]byte, entry.Action, string, error) {
	brokerID := req.Broker
	if brokerID == "" {
		brokerID = c.cfg.Broker
	}
	if brokerID == "" {
		// The service decides for its default broker; name it, so that the
		// action digest the SDK checks is the one the service commits.
		wk, err := c.wellKnown(ctx)
		if err != nil {
			return nil, entry.Action{}, "", err
		}
		brokerID = wk.DefaultBroker
	}
	ar := api.ActionRequest{Action: req.Action, Resource: req.Resource, ArgsDigest: req.ArgsDigest, Broker: brokerID, CorrelationID: cid}
	if req.Args != nil {
		raw, err := json.Marshal(req.Args)
		if err != nil {
			return nil, entry.Action{}, "", fmt.Errorf("args: %w", err)
		}
		d, err := api.ArgsDigest(raw)
		if err != nil {
			return nil, entry.Action{}, "", fmt.Errorf("args: %w", err)
		}
		if ar.ArgsDigest != "" && ar.ArgsDigest != d {
			return nil, entry.Action{}, "", fmt.Errorf("args_digest %s is not the digest of args (%s)", ar.ArgsDigest, d)
		}
		ar.Args, ar.ArgsDigest = raw, d
	}
	var caps string
	if m := req.Capabilities; m != nil {
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, entry.Action{}, "", err
		}
		if caps, err = m.Digest(); err != nil {
			return nil, entry.Action{}, "", err
		}
		ar.Capabilities = raw
	}
	act := entry.Action{Actor: self.String(), Action: req.Action, Resource: req.Resource,
		ArgsDigest: ar.ArgsDigest, Broker: brokerID, CapabilitiesDigest: caps}
	digest, err := entry.ActionDigest(act)
	if err != nil {
		return nil, entry.Action{}, "", err
	}
	rt := req.Runtime
	if rt == nil {
		rt = c.cfg.Runtime
	}
	var envelope []byte
	if rt != nil {
		if brokerID == "" {
			return nil, entry.Action{}, "", errors.New("an attested request names its broker (Request.Broker or Config.Broker)")
		}
		p := *rt
		now := c.cfg.Now()
		p.Broker, p.IssuedAt, p.ExpiresAt = brokerID, attest.FormatTime(now), attest.FormatTime(now.Add(5*time.Minute))
		p.Sandbox = nil
		if m := req.Capabilities; m != nil {
			p.Sandbox = &attest.Sandbox{Profile: m.Profile, Capabilities: caps}
		}
		svid, err := c.cfg.SVID.GetX509SVID()
		if err != nil {
			return nil, entry.Action{}, "", err
		}
		s, err := attest.SignRuntimeContext(ctx, svid, digest, &p)
		if err != nil {
			return nil, entry.Action{}, "", fmt.Errorf("runtime attestation: %w", err)
		}
		envelope = s.Envelope
		ar.AttestationChain = s.ChainBase64()
	}
	b, err := json.Marshal(&ar)
	if err != nil {
		return nil, entry.Action{}, "", err
	}
	if envelope != nil {
		// The envelope goes in exactly as signed.
		b = append(b[:len(b)-1], []byte(`,"attestation":`+string(envelope)+`}`)...)
	}
	return b, act, digest, nil
}

// maxDecisionAnswer is the most read of an answer to POST /v1/actions; a
// longer one is an ambiguous failure (it may hide a committed decision).
const maxDecisionAnswer = 1 << 20

// attempt makes one request. A nil failure means a well-formed answer of a
// committed decision (not yet verified).
func (c *Client) attempt(ctx context.Context, body []byte, cid, userToken string) (*Decision, *failure) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+"/v1/actions", bytes.NewReader(body))
	if err != nil {
		return nil, &failure{err: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(correlation.Header, cid)
	if userToken != "" {
		hr.Header.Set(identity.UserTokenHeader, userToken)
	}
	// Whether the request reached the wire decides whether a failure is
	// safe to retry.
	var sent atomic.Bool
	hr = hr.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) }}))
	resp, err := c.http.Do(hr)
	if err != nil {
		if !sent.Load() {
			return nil, &failure{err: err, retry: true}
		}
		return nil, &failure{err: err, ambig: true}
	}
	defer resp.Body.Close()
	raw, err := httperr.ReadBody(resp.Body, maxDecisionAnswer)
	if err != nil {
		return nil, &failure{err: fmt.Errorf("POST /v1/actions: reading the answer: %w", err), ambig: true}
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		err := serviceError(resp.StatusCode, raw)
		if err.Code == "log_pushback" || err.Code == "shutting_down" {
			return nil, &failure{err: err, retry: true}
		}
		return nil, &failure{err: err, ambig: true}
	}
	d, err := ParseAnswer(resp.StatusCode, raw)
	if err != nil {
		// A body that is not a decision may hide a committed one.
		return nil, &failure{err: err, ambig: errors.Is(err, errNotJSON)}
	}
	d.Raw = raw
	return d, nil
}

// verify checks an answer against what was asked: the action digest, and
// for an allow the receipt against the issuer's JWKS.
func (c *Client) verify(ctx context.Context, d *Decision, req Request, digest, brokerID, cid string) error {
	want := Expect{Actor: c.ID().String(), Action: req.Action, Resource: req.Resource, Broker: brokerID, ActionDigest: digest, CorrelationID: cid,
		Now: c.cfg.Now(), Leeway: Leeway}
	if d.Allow {
		issuer, err := c.issuerOf(ctx)
		if err != nil {
			return err
		}
		want.Issuer = issuer
	}
	var keys *jose.JSONWebKeySet
	if d.Allow {
		var err error
		if keys, err = c.keys.Keys(ctx, false); err != nil {
			return err
		}
	}
	err := CheckAnswer(d, keys, want)
	if errors.Is(err, receipt.ErrUnknownKey) {
		if fresh, kerr := c.keys.Keys(ctx, true); kerr == nil {
			err = CheckAnswer(d, fresh, want)
		}
	}
	return err
}

// Issuer is the receipt issuer (log origin) the client trusts.
func (c *Client) Issuer(ctx context.Context) (string, error) { return c.issuerOf(ctx) }

func (c *Client) issuerOf(ctx context.Context) (string, error) {
	c.mu.Lock()
	issuer := c.issuer
	c.mu.Unlock()
	if issuer != "" {
		return issuer, nil
	}
	wk, err := c.wellKnown(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.issuer == "" {
		c.issuer = wk.Origin
	}
	return c.issuer, nil
}

// wellKnown reads /.well-known/ztlog over the authenticated connection,
// once.
func (c *Client) wellKnown(ctx context.Context) (*receipt.ServiceInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.info != nil {
		return c.info, nil
	}
	info, err := receipt.FetchServiceInfo(ctx, c.http, c.cfg.URL)
	if err != nil {
		return nil, err
	}
	c.info = info
	return info, nil
}

// HTTPClient is the mutual-TLS client the SDK uses (for brokers' reports
// and other calls to the same service).
func (c *Client) HTTPClient() *http.Client { return c.http }

// Keys is the issuer's JWKS source the SDK verifies receipts with.
func (c *Client) Keys() receipt.KeySource { return c.keys }
