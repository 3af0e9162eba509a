package conformance

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// suite is the state shared by the checks of one run.
type suite struct {
	cfg    Config
	agent  spiffeid.ID
	broker spiffeid.ID
	// agentHTTP presents the agent's X.509-SVID; anonHTTP presents no
	// client certificate; brokerHTTP the broker's (nil without one).
	agentHTTP, anonHTTP, brokerHTTP *http.Client
	status                          map[string]Status

	// Learnt along the way.
	wk       wellKnown
	policy   *trustpolicy.Policy
	jwks     *jose.JSONWebKeySet
	audience string // the broker receipts are asked for
	deny     *decided
	allow    *decided
	result   *api.ResultResponse
	mark     uint64 // log size after the last fence
	// fenced: nothing was sent since the last fence that may have
	// committed, so mark is still the log size.
	fenced bool
}

// wellKnown is what the suite reads from /.well-known/ztlog.
type wellKnown struct {
	Origin        string          `json:"origin"`
	VerifierKey   string          `json:"verifier_key"`
	ReceiptJWKS   json.RawMessage `json:"receipt_jwks"`
	DefaultBroker string          `json:"default_broker"`
}

// decided is a decision the suite asked for and what it computed itself.
type decided struct {
	req    api.ActionRequest
	digest string // the action digest computed from the request
	status int
	resp   api.ActionResponse
	raw    []byte
}

func newSuite(cfg Config) (*suite, error) {
	svid, err := cfg.Agent.GetX509SVID()
	if err != nil {
		return nil, errors.Join(ErrConfig, fmt.Errorf("agent SVID: %w", err))
	}
	auth := tlsconfig.AuthorizeMemberOf(svid.ID.TrustDomain())
	if !cfg.ServerID.IsZero() {
		auth = tlsconfig.AuthorizeID(cfg.ServerID)
	}
	mk := func(c *tls.Config) *http.Client {
		return &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{TLSClientConfig: c}}
	}
	anon := tlsconfig.TLSClientConfig(cfg.Bundles, auth)
	s := &suite{cfg: cfg, agent: svid.ID, status: map[string]Status{},
		agentHTTP: mk(tlsconfig.MTLSClientConfig(cfg.Agent, cfg.Bundles, auth)), anonHTTP: mk(anon)}
	if cfg.Broker != nil {
		b, err := cfg.Broker.GetX509SVID()
		if err != nil {
			return nil, errors.Join(ErrConfig, fmt.Errorf("broker SVID: %w", err))
		}
		s.broker = b.ID
		s.brokerHTTP = mk(tlsconfig.MTLSClientConfig(cfg.Broker, cfg.Bundles, auth))
	}
	return s, nil
}

// answer is one HTTP exchange.
type answer struct {
	status int
	body   []byte
}

// errBody is the contract's error body, when the answer carries one.
func (a *answer) errBody() *httperr.Error {
	var e httperr.Error
	if json.Unmarshal(a.body, &e) != nil || e.Code == "" {
		return nil
	}
	return &e
}

func (a *answer) String() string {
	return fmt.Sprintf("HTTP %d %s", a.status, text.Cut(string(bytes.TrimSpace(a.body)), 300))
}

func (s *suite) do(ctx context.Context, c *http.Client, method, path string, body []byte, hdr map[string]string) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cfg.Target+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := httperr.ReadBody(resp.Body, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return &answer{status: resp.StatusCode, body: b}, nil
}

// getJSON reads a public JSON resource.
func (s *suite) getJSON(ctx context.Context, path string, v any) error {
	a, err := s.do(ctx, s.agentHTTP, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	if a.status != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, a)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("GET %s: not JSON: %w", path, err)
	}
	return nil
}

// request is an action request from the agent; broker "" asks for the
// suite's audience.
func (s *suite) request(action, actor string) api.ActionRequest {
	return api.ActionRequest{Actor: actor, Action: action, Resource: s.cfg.Resource, Broker: s.audience}
}

// decide posts req as the agent and returns the answer with the action
// digest the suite computed from what it asked.
func (s *suite) decide(ctx context.Context, req api.ActionRequest) (*decided, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	digest, err := entry.ActionDigest(entry.Action{Actor: s.agent.String(), Action: req.Action, Resource: req.Resource,
		ArgsDigest: req.ArgsDigest, Broker: req.Broker})
	if err != nil {
		return nil, err
	}
	s.fenced = false
	a, err := s.do(ctx, s.agentHTTP, http.MethodPost, "/v1/actions", body, nil)
	if err != nil {
		return nil, err
	}
	d := &decided{req: req, digest: digest, status: a.status, raw: a.body}
	if a.status == http.StatusOK || a.status == http.StatusForbidden {
		if err := json.Unmarshal(a.body, &d.resp); err != nil {
			return nil, fmt.Errorf("POST /v1/actions: HTTP %d but the body is not a decision: %w", a.status, err)
		}
	}
	return d, nil
}

// checkpoint reads the latest checkpoint and verifies its signature with
// the note verifier key the target publishes.
func (s *suite) checkpoint(ctx context.Context) (*trustpolicy.Checkpoint, error) {
	if s.policy == nil {
		return nil, errors.New("no verifier key (the /.well-known/ztlog check did not pass)")
	}
	a, err := s.do(ctx, s.agentHTTP, http.MethodGet, "/log/checkpoint", nil, nil)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("GET /log/checkpoint: %s", a)
	}
	cp, err := s.policy.VerifyCheckpoint(a.body, trustpolicy.VerifyOptions{})
	if err != nil {
		return nil, fmt.Errorf("the checkpoint at /log/checkpoint does not verify with the published verifier key: %w", err)
	}
	return cp, nil
}

// awaitSize waits until a published checkpoint covers n entries and
// returns it.
func (s *suite) awaitSize(ctx context.Context, n uint64) (*trustpolicy.Checkpoint, error) {
	deadline := time.Now().Add(s.cfg.Timeout)
	for {
		cp, err := s.checkpoint(ctx)
		if err != nil {
			return nil, err
		}
		if cp.Size >= n {
			return cp, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no checkpoint covers %d entries after %s (latest size %d)", n, s.cfg.Timeout, cp.Size)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fence commits a deny and waits until it is published; it returns the
// deny's index. Refused requests are bracketed by fences: if the log did
// not grow between them, nothing was committed.
func (s *suite) fence(ctx context.Context) (uint64, error) {
	d, err := s.decide(ctx, s.request(s.cfg.DenyAction, ""))
	if err != nil {
		return 0, fmt.Errorf("fence deny: %w", err)
	}
	if d.status != http.StatusForbidden || d.resp.Log.LeafHash == "" {
		return 0, fmt.Errorf("fence deny (%s on %s): want a committed deny, got HTTP %d", d.req.Action, d.req.Resource, d.status)
	}
	if _, err := s.awaitSize(ctx, d.resp.Log.Index+1); err != nil {
		return 0, fmt.Errorf("fence deny at index %d: %w", d.resp.Log.Index, err)
	}
	return d.resp.Log.Index, nil
}

// begin fences and records the log size before a refused request, unless
// the last fence still marks it.
func (s *suite) begin(ctx context.Context) error {
	if s.fenced {
		return nil
	}
	i, err := s.fence(ctx)
	if err != nil {
		return fmt.Errorf("cannot measure the log size before the request: %w", err)
	}
	s.mark = i + 1
	return nil
}

// committedSince fences again and returns how many entries were sequenced
// between the last fence and this one.
func (s *suite) committedSince(ctx context.Context) (uint64, error) {
	before := s.mark
	i, err := s.fence(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot measure the log size after the request: %w", err)
	}
	s.mark, s.fenced = i+1, true
	if i < before {
		return 0, fmt.Errorf("the log went back: size %d before, the next deny got index %d", before, i)
	}
	return i - before, nil
}

// nothingCommitted runs a refused request between fences and fails if the
// log grew.
func (s *suite) nothingCommitted(ctx context.Context, what string, fn func() error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	// Until the next fence, the log size is unknown again.
	s.fenced = false
	if err := fn(); err != nil {
		return err
	}
	n, err := s.committedSince(ctx)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%s: %d entries were committed (log size %d before, the next deny was sequenced at index %d)", what, n, s.mark-1-n, s.mark-1)
	}
	return nil
}

// entryAt reads GET /v1/entries/{index} and checks that the leaf it
// returns hashes to wantLeafHash.
func (s *suite) entryAt(ctx context.Context, index uint64, wantLeafHash string) (entry.Entry, *entryResponse, error) {
	var er entryResponse
	if err := s.getJSON(ctx, fmt.Sprintf("/v1/entries/%d", index), &er); err != nil {
		return nil, nil, fmt.Errorf("entry %d is not readable: %w", index, err)
	}
	leaf, err := base64.StdEncoding.DecodeString(er.Leaf)
	if err != nil {
		return nil, nil, fmt.Errorf("entry %d: leaf is not base64: %w", index, err)
	}
	got := base64.StdEncoding.EncodeToString(proof.LeafHash(leaf))
	if got != wantLeafHash {
		return nil, nil, fmt.Errorf("entry %d: its leaf hashes to %s, the answer says %s", index, got, wantLeafHash)
	}
	if er.Index != index {
		return nil, nil, fmt.Errorf("GET /v1/entries/%d answered index %d", index, er.Index)
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		return nil, nil, fmt.Errorf("entry %d is not a contract entry: %w", index, err)
	}
	er.leaf = leaf
	return e, &er, nil
}

// entryResponse is the body of GET /v1/entries/{index}.
type entryResponse struct {
	Index          uint64   `json:"index"`
	Leaf           string   `json:"leaf"`
	LeafHash       string   `json:"leaf_hash"`
	TreeSize       uint64   `json:"tree_size"`
	InclusionProof []string `json:"inclusion_proof"`
	Checkpoint     string   `json:"checkpoint"`
	leaf           []byte
}

// postResult posts a broker-result body as the broker.
func (s *suite) postResult(ctx context.Context, body []byte) (*answer, error) {
	s.fenced = false
	return s.do(ctx, s.brokerHTTP, http.MethodPost, "/v1/results", body, nil)
}
