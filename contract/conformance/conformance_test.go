package conformance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/conformance"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// config is the suite's configuration for a target in front of (or being)
// the contracttest server srv.
func config(t *testing.T, srv *contracttest.Server, target string) conformance.Config {
	jwt, err := srv.CA.IssueJWTSVID(contracttest.AgentID, []string{contracttest.ServerID.String()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return conformance.Config{Target: target, Agent: srv.SVID(contracttest.AgentID), Bundles: srv.Src,
		ServerID: contracttest.ServerID, JWT: jwt, Broker: srv.SVID(contracttest.BrokerID), Timeout: 10 * time.Second}
}

func run(t *testing.T, cfg conformance.Config) *conformance.Report {
	t.Helper()
	rep, err := conformance.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Log("\n" + b.String())
	return rep
}

func TestRealServerPasses(t *testing.T) {
	srv := contracttest.Start(t, contracttest.Options{})
	rep := run(t, config(t, srv, srv.URL))
	if got := rep.Failed(); len(got) != 0 {
		t.Errorf("failed checks: %v", got)
	}
	if got, want := rep.Count(conformance.Pass), len(conformance.Checks()); got != want {
		t.Errorf("%d checks passed, want all %d", got, want)
	}
}

func TestWithoutBrokerTheResultChecksSkip(t *testing.T) {
	srv := contracttest.Start(t, contracttest.Options{})
	cfg := config(t, srv, srv.URL)
	cfg.Broker = nil
	rep := run(t, cfg)
	var skipped []string
	for _, r := range rep.Results {
		if r.Status == conformance.Skip {
			skipped = append(skipped, r.ID)
		}
	}
	if want := []string{"ZT-RESULT-001", "ZT-RESULT-002"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
	if got := rep.Failed(); len(got) != 0 {
		t.Errorf("failed checks: %v", got)
	}
}

// The suite fails, with the right IDs, against deliberately broken
// adapters: proxies in front of a real server, each with one fault.
func TestBrokenAdapters(t *testing.T) {
	for _, c := range []struct {
		fault fault
		want  []string
	}{
		{faithful, nil},
		{acceptsUnauthenticated, []string{"ZT-AUTH-001", "ZT-AUTH-002"}},
		{staleReceipts, []string{"ZT-ALLOW-001", "ZT-ALLOW-002"}},
		{allowsWithoutCommitting, []string{"ZT-ACTOR-001", "ZT-ALLOW-002", "ZT-PROOF-001", "ZT-RESULT-001"}},
		{acceptsUnknownFields, []string{"ZT-REQ-002"}},
		{acceptsSecondResult, []string{"ZT-RESULT-002"}},
	} {
		t.Run(string(c.fault), func(t *testing.T) {
			// Mostly waiting for checkpoints: run side by side.
			t.Parallel()
			srv := contracttest.Start(t, contracttest.Options{})
			p := startProxy(t, srv, c.fault)
			cfg := config(t, srv, p)
			// Waits for entries that never come end sooner.
			cfg.Timeout = 3 * time.Second
			rep := run(t, cfg)
			if got := rep.Failed(); !slices.Equal(got, c.want) {
				t.Errorf("failed checks %v, want %v", got, c.want)
			}
		})
	}
}

func TestReports(t *testing.T) {
	rep := &conformance.Report{Target: "https://x", Results: []conformance.Result{
		{Check: conformance.Checks()[0], Status: conformance.Pass, Detail: "ok"},
		{Check: conformance.Checks()[1], Status: conformance.Fail, Detail: "HTTP 200"},
		{Check: conformance.Checks()[2], Status: conformance.Skip, Detail: "not run"},
	}}
	var j bytes.Buffer
	if err := rep.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	var back conformance.Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Failed(); !slices.Equal(got, []string{"ZT-AUTH-001"}) {
		t.Errorf("JSON round trip: failed %v", got)
	}
	if back.Results[1].Must != "contract/conformance/README.md#must-authenticate" {
		t.Errorf("JSON: must %q", back.Results[1].Must)
	}
	var x bytes.Buffer
	if err := rep.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	var ju struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(x.Bytes(), &ju); err != nil {
		t.Fatalf("JUnit is not XML: %v\n%s", err, x.String())
	}
	if len(ju.Suites) != 1 {
		t.Fatalf("%d suites", len(ju.Suites))
	}
	s := ju.Suites[0]
	if s.Tests != 3 {
		t.Errorf("tests=%d", s.Tests)
	}
	if s.Failures != 1 {
		t.Errorf("failures=%d", s.Failures)
	}
	if s.Skipped != 1 {
		t.Errorf("skipped=%d", s.Skipped)
	}
	if !strings.HasPrefix(s.Cases[1].Name, "ZT-AUTH-001 ") || s.Cases[1].Failure == nil {
		t.Errorf("case 1: %q failure=%v", s.Cases[1].Name, s.Cases[1].Failure != nil)
	}
}

func TestEveryCheckCitesADocumentedMust(t *testing.T) {
	readme, err := readFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range conformance.Checks() {
		if seen[c.ID] {
			t.Errorf("duplicate ID %s", c.ID)
		}
		seen[c.ID] = true
		anchor, ok := strings.CutPrefix(c.Must, "contract/conformance/README.md#")
		if !ok {
			t.Errorf("%s cites %q, not an anchor of contract/conformance/README.md", c.ID, c.Must)
			continue
		}
		if !strings.Contains(readme, `<a id="`+anchor+`"></a>`) {
			t.Errorf("%s cites #%s, which README.md does not define", c.ID, anchor)
		}
		if !strings.Contains(readme, "| "+c.ID+" |") {
			t.Errorf("%s is not in README.md's table of checks", c.ID)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := conformance.Run(context.Background(), conformance.Config{Target: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("plain http target: %v", err)
	}
}

// fault is what a broken adapter gets wrong.
type fault string

const (
	faithful fault = "faithful"
	// acceptsUnauthenticated decides requests without credentials as the
	// demo agent.
	acceptsUnauthenticated fault = "accepts-unauthenticated"
	// staleReceipts answers every allow with the receipt of an earlier
	// allow (another index, another action).
	staleReceipts fault = "stale-receipts"
	// allowsWithoutCommitting answers the allow action itself, with a
	// receipt it signs for an index it never commits, and ignores the
	// body's actor.
	allowsWithoutCommitting fault = "allows-without-committing"
	// acceptsUnknownFields drops unknown members before deciding.
	acceptsUnknownFields fault = "accepts-unknown-fields"
	// acceptsSecondResult answers a refused result with the first one's
	// answer, as if it had committed it.
	acceptsSecondResult fault = "accepts-second-result"
)

type proxy struct {
	t     *testing.T
	srv   *contracttest.Server
	fault fault

	mu      sync.Mutex
	clients map[string]*http.Client
	stale   string // staleReceipts: an earlier allow's receipt
	key     *receipt.Key
	result  []byte // acceptsSecondResult: the first result's answer
}

// startProxy serves a broken adapter in front of srv and returns its URL.
func startProxy(t *testing.T, srv *contracttest.Server, f fault) string {
	p := &proxy{t: t, srv: srv, fault: f, clients: map[string]*http.Client{}}
	switch f {
	case staleReceipts:
		body, _ := json.Marshal(api.ActionRequest{Action: "demo.echo", Resource: "demo://stale"})
		status, raw := p.forward(http.MethodPost, "/v1/actions", body, contracttest.AgentID.String(), http.Header{})
		var ar api.ActionResponse
		if err := json.Unmarshal(raw, &ar); status != http.StatusOK || err != nil || ar.Receipt == "" {
			t.Fatalf("stale receipt: HTTP %d %s", status, raw)
		}
		p.stale = ar.Receipt
	case allowsWithoutCommitting:
		k, err := receipt.GenerateKey("")
		if err != nil {
			t.Fatal(err)
		}
		p.key = k
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: p, TLSConfig: identity.ServerTLS(srv.Src)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	return "https://" + ln.Addr().String()
}

// client is an mTLS client to the real server presenting an SVID for id
// ("" : none).
func (p *proxy) client(id string) *http.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id]; ok {
		return c
	}
	var svid *x509svid.SVID
	if id != "" {
		svid = p.srv.SVID(spiffeid.RequireFromString(id))
	}
	c := p.srv.Client(svid)
	p.clients[id] = c
	return c
}

func (p *proxy) forward(method, path string, body []byte, as string, hdr http.Header) (int, []byte) {
	req, err := http.NewRequest(method, p.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		p.t.Error(err)
		return 500, nil
	}
	for _, h := range []string{"Content-Type", "Authorization", "X-Correlation-ID"} {
		if v := hdr.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client(as).Do(req)
	if err != nil {
		return http.StatusBadGateway, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	as := ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		as = id.String()
	}
	hdr := r.Header.Clone()
	path := r.URL.RequestURI()
	switch {
	case p.fault == acceptsUnauthenticated && as == "":
		as = contracttest.AgentID.String()
		hdr.Del("Authorization")
	case p.fault == acceptsUnknownFields && r.URL.Path == "/v1/actions":
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			delete(m, "conformance_colour")
			body, _ = json.Marshal(m)
		}
	case p.fault == allowsWithoutCommitting && r.URL.Path == "/v1/actions":
		if p.fakeAllow(w, body, as) {
			return
		}
	case p.fault == allowsWithoutCommitting && r.URL.Path == "/v1/receipts/jwks.json":
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{p.key.Public()}})
		return
	}
	status, raw := p.forward(r.Method, path, body, as, hdr)
	switch {
	case p.fault == staleReceipts && r.URL.Path == "/v1/actions" && status == http.StatusOK:
		var m map[string]any
		json.Unmarshal(raw, &m)
		m["receipt"] = p.stale
		raw, _ = json.Marshal(m)
	case p.fault == allowsWithoutCommitting && r.URL.Path == "/.well-known/ztlog":
		var m map[string]any
		json.Unmarshal(raw, &m)
		m["receipt_jwks"] = map[string]any{"keys": []any{p.key.Public()}}
		raw, _ = json.Marshal(m)
	case p.fault == acceptsSecondResult && r.URL.Path == "/v1/results":
		p.mu.Lock()
		if status == http.StatusOK && p.result == nil {
			p.result = raw
		} else if status == http.StatusConflict && p.result != nil {
			status, raw = http.StatusOK, p.result
		}
		p.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(raw)
}

// fakeAllow answers an allow of demo.echo without deciding or committing:
// the index it names is the log's next one, the leaf hash is of an entry
// never appended, the receipt is signed with the proxy's own key.
func (p *proxy) fakeAllow(w http.ResponseWriter, body []byte, as string) bool {
	var req api.ActionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil || req.Action != "demo.echo" || req.Broker == "" || as == "" {
		return false
	}
	digest, _ := entry.ActionDigest(entry.Action{Actor: as, Action: req.Action, Resource: req.Resource, Broker: req.Broker})
	index := p.srv.Size()
	lh := base64.StdEncoding.EncodeToString(proof.LeafHash([]byte("never committed")))
	policy := "sha256:" + strings.Repeat("0", 64)
	now := time.Now()
	tok, err := p.key.Sign(receipt.Claims{Version: receipt.Version, Issuer: contracttest.Origin, Subject: as, Audience: req.Broker,
		IssuedAt: now.Unix(), Expiry: now.Add(time.Minute).Unix(), ID: "fake-" + lh[:8], ActionDigest: digest, Decision: "allow",
		LogIndex: index, LeafHash: lh, PolicyHash: policy, CorrelationID: "fake"})
	if err != nil {
		p.t.Error(err)
		return false
	}
	json.NewEncoder(w).Encode(api.ActionResponse{Decision: "allow", Reasons: []api.Reason{{Code: "policy.allow", Message: "fake"}},
		Actor: as, Action: req.Action, Resource: req.Resource, ActionDigest: digest,
		Policy: api.Policy{Hash: policy, Engine: "opa"}, CorrelationID: "fake", Receipt: tok,
		Log: api.LogRef{Origin: contracttest.Origin, Index: index, LeafHash: lh}})
	return true
}

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}
