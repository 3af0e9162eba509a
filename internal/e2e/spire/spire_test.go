package spire

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
)

// policy is the OPA policy of the test's ztlog: demo.* for registered
// agents (the gate itself denies unregistered and revoked ones).
const policy = `package ztlog.authz

import rego.v1

default allow := false

allow if {
	startswith(input.action, "demo.")
	input.actor.status == "registered"
}

reasons contains {"code": "policy.allow", "message": "demo actions are allowed"} if allow

reasons contains {"code": "policy.not_demo", "message": "only demo actions are allowed"} if not allow
`

// ztlogEnv is everything TestSPIRE runs: two SPIRE trust domains, the
// binaries of this module, and a ztlog serve on the first domain.
type ztlogEnv struct {
	root                string
	a, b                *spireDomain
	ztlogBin            string
	ztAgent, ztBroker   string // copies of zt: one path per role
	addr                string // ztlog serve's 127.0.0.1:port
	serverID, brokerID  spiffeid.ID
	agentID, sdkID      spiffeid.ID
	partnerID, adminID  spiffeid.ID
	admin               *http.Client // the test as /admin, mutual TLS with its SPIRE SVID
	sdkSource, adminSrc *workloadapi.X509Source
}

func (e *ztlogEnv) url() string { return "https://" + e.addr }

// TestSPIRE runs ztlog against real SPIRE: identities for the log, an
// agent, a broker and an administrator from a spire-agent's Workload API;
// a decision with a receipt that verifies; a broker run with a committed
// result; decisions that keep working while every SVID rotates; a JWT-SVID
// on POST /actions; and an agent of a federated trust domain.
func TestSPIRE(t *testing.T) {
	serverBin, agentBin := spireTools(t)
	e := setup(t, serverBin, agentBin)

	t.Run("decision", func(t *testing.T) { testDecision(t, e) })
	// The broker outlives its subtest (rotation uses it): it belongs to t.
	broker := startBroker(t, e)
	t.Run("broker run", func(t *testing.T) { testBrokerRun(t, e, broker) })
	t.Run("rotation", func(t *testing.T) { testRotation(t, e, broker) })
	t.Run("jwt-svid", func(t *testing.T) { testJWTSVID(t, e) })
	t.Run("federation", func(t *testing.T) { testFederation(t, e) })
}

func setup(t *testing.T, serverBin, agentBin string) *ztlogEnv {
	started := time.Now()
	// Unix socket paths must stay short: not under t.TempDir().
	root, err := os.MkdirTemp("", "ztspire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	e := &ztlogEnv{root: root}

	// The binaries, one path per role: SPIRE tells the workloads apart by
	// unix:path.
	bin := filepath.Join(root, "bin")
	e.ztlogBin = filepath.Join(bin, "ztlog")
	e.ztAgent, e.ztBroker = filepath.Join(bin, "zt-agent"), filepath.Join(bin, "zt-broker")
	for out, pkg := range map[string]string{e.ztlogBin: "github.com/zt-infra/ztlog/cmd/ztlog", e.ztAgent: "github.com/zt-infra/ztlog/cmd/zt"} {
		if o, err := run(5*time.Minute, "go", "build", "-o", out, pkg); err != nil {
			t.Fatalf("build %s: %v %s", pkg, err, o)
		}
	}
	copyFile(t, e.ztAgent, e.ztBroker)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built the binaries in %s", time.Since(started).Round(time.Millisecond))

	pki := newWebPKI(t, root)
	e.a = newSPIREDomain(t, serverBin, agentBin, "ztlog.test", filepath.Join(root, "a"))
	e.b = newSPIREDomain(t, serverBin, agentBin, "partner.test", filepath.Join(root, "b"))
	e.a.startServer(t, pki, e.b)
	e.b.startServer(t, pki, e.a)
	// Each server fetches the other's bundle from its bundle endpoint
	// (entries that federate need it first).
	e.a.refreshFederation(t, e.b)
	e.b.refreshFederation(t, e.a)
	e.a.startAgent(t)
	e.b.startAgent(t)
	e.serverID, e.agentID = spiffeid.RequireFromString(e.a.ID("/ztlog")), spiffeid.RequireFromString(e.a.ID("/agent/demo"))
	e.brokerID, e.adminID = spiffeid.RequireFromString(e.a.ID("/broker/demo")), spiffeid.RequireFromString(e.a.ID("/admin"))
	e.sdkID, e.partnerID = spiffeid.RequireFromString(e.a.ID("/agent/sdk")), spiffeid.RequireFromString(e.b.ID("/agent/partner"))
	// The log federates with partner.test: its Workload API then also
	// serves the partner's bundle, which authenticates partner agents.
	e.a.entry(t, "/ztlog", e.ztlogBin, e.b.td)
	e.a.entry(t, "/agent/demo", e.ztAgent)
	e.a.entry(t, "/broker/demo", e.ztBroker)
	// The test process itself: the administrator, and an SDK agent.
	e.a.entry(t, "/admin", self)
	e.a.entry(t, "/agent/sdk", self)
	// The partner's agent federates with ztlog.test, to authenticate the log.
	e.b.entry(t, "/agent/partner", e.ztAgent, e.a.td)
	t.Logf("SPIRE up (two servers, two agents, federated) at %s", time.Since(started).Round(time.Millisecond))

	// The test's own identities, once the agent has them.
	waitFor(t, "the test's SVIDs (/admin, /agent/sdk) from the Workload API", 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svids, err := workloadapi.FetchX509SVIDs(ctx, workloadapi.WithAddr(e.a.WorkloadAPI()))
		if err != nil {
			return err
		}
		if pick(svids, e.adminID) == nil || pick(svids, e.sdkID) == nil {
			return fmt.Errorf("have %d SVIDs, not yet both", len(svids))
		}
		return nil
	})
	e.adminSrc = x509Source(t, e.a, e.adminID)
	e.sdkSource = x509Source(t, e.a, e.sdkID)
	e.admin = &http.Client{Timeout: 30 * time.Second, Transport: identity.RotatingTransport(e.adminSrc, func() *http.Transport {
		return &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(e.adminSrc, e.adminSrc, tlsconfig.AuthorizeID(e.serverID))}
	})}

	// ztlog serve, its identity from the Workload API.
	dir := filepath.Join(root, "ztlog")
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "authz.rego"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(time.Minute, e.ztlogBin, "keygen", "--origin", "localhost/ztlog-spire-e2e", "--out", filepath.Join(dir, "log.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := run(time.Minute, e.ztlogBin, "receipt-keygen", "--out", filepath.Join(dir, "receipt.jwk")); err != nil {
		t.Fatal(err)
	}
	e.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := startProc(t, "ztlog serve", nil, e.ztlogBin, "serve", "--listen", e.addr, "--data-dir", filepath.Join(dir, "log"),
		"--key", filepath.Join(dir, "log.key"), "--checkpoint-interval", "100ms",
		"--workload-api", e.a.WorkloadAPI(), "--identity-timeout", "60s",
		"--policy", filepath.Join(dir, "policy"), "--receipt-key", filepath.Join(dir, "receipt.jwk"),
		"--admin", e.adminID.String(), "--default-broker", e.brokerID.String())
	waitFor(t, "ztlog serve ready", 90*time.Second, func() error {
		if srv.exited() {
			return fmt.Errorf("ztlog serve exited: %s", tail(srv.out.String(), 10))
		}
		resp, err := http.Get("http://" + e.addr + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", resp.StatusCode, body)
		}
		return nil
	})
	t.Logf("ztlog serve ready at %s", time.Since(started).Round(time.Millisecond))

	// The agents of ztlog.test, registered by the administrator.
	e.register(t, e.agentID, e.brokerID)
	e.register(t, e.sdkID)
	return e
}

func pick(svids []*x509svid.SVID, id spiffeid.ID) *x509svid.SVID {
	for _, s := range svids {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// x509Source is a streaming X.509 source of the test process for one of
// its identities.
func x509Source(t *testing.T, d *spireDomain, id spiffeid.ID) *workloadapi.X509Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(d.WorkloadAPI())),
		workloadapi.WithDefaultX509SVIDPicker(func(s []*x509svid.SVID) *x509svid.SVID {
			if p := pick(s, id); p != nil {
				return p
			}
			return s[0]
		}))
	if err != nil {
		t.Fatalf("X.509 source for %s: %v", id, err)
	}
	t.Cleanup(func() { src.Close() })
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != id {
		t.Fatalf("X.509 source picked %s, want %s", svid.ID, id)
	}
	return src
}

// register registers an agent through POST /v1/agents as the administrator.
func (e *ztlogEnv) register(t *testing.T, id spiffeid.ID, brokers ...spiffeid.ID) {
	t.Helper()
	req := api.AgentRequest{Op: "register", ID: id.String(), Owner: "spire e2e"}
	for _, b := range brokers {
		req.Brokers = append(req.Brokers, b.String())
	}
	body, _ := json.Marshal(req)
	resp, err := e.admin.Post(e.url()+"/v1/agents", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register %s: HTTP %d %s", id, resp.StatusCode, b)
	}
}

// decide runs `zt decide --workload-api --json` (the agent's copy of zt)
// and returns its exit status and answer.
func (e *ztlogEnv) decide(t *testing.T, workloadAPI, action, resource string) (int, *api.ActionResponse, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ztAgent, "decide", "--server", e.url(), "--workload-api", workloadAPI,
		"--server-id", e.serverID.String(), "--action", action, "--resource", resource, "--json", "--timeout", "20s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("zt decide: %v", err)
	}
	var ar api.ActionResponse
	if err := json.Unmarshal(stdout.Bytes(), &ar); err != nil {
		if code == 0 || code == 1 {
			t.Fatalf("zt decide exit %d but its --json answer does not parse: %v: %q", code, err, stdout.String())
		}
		return code, nil, stderr.String()
	}
	return code, &ar, stderr.String()
}

// entry reads and parses the log entry at i through the public read API.
func (e *ztlogEnv) entry(t *testing.T, i uint64) entry.Entry {
	t.Helper()
	var parsed entry.Entry
	waitFor(t, fmt.Sprintf("log entry %d", i), 20*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/entries/%d", e.addr, i))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Leaf []byte `json:"leaf"`
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		parsed, err = entry.Parse(body.Leaf)
		return err
	})
	return parsed
}

func (e *ztlogEnv) decision(t *testing.T, i uint64) *entry.Decision {
	t.Helper()
	d, ok := e.entry(t, i).(*entry.Decision)
	if !ok {
		t.Fatalf("log entry %d is not a decision", i)
	}
	return d
}

// getJSON reads a JSON document from the log over mutual TLS as the admin.
func (e *ztlogEnv) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := e.admin.Get(e.url() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// testDecision: zt decide with the agent's SPIRE SVID gets an allow whose
// receipt verifies against the log's JWKS and whose entry names the agent.
func testDecision(t *testing.T, e *ztlogEnv) {
	code, ar, stderr := e.decide(t, e.a.WorkloadAPI(), "demo.echo", "demo://spire")
	if code != 0 {
		t.Fatalf("zt decide --workload-api: exit %d, want 0 (allow): %s", code, stderr)
	}
	if ar.Decision != "allow" {
		t.Fatalf("decision %q, want allow", ar.Decision)
	}
	if ar.Actor != e.agentID.String() {
		t.Errorf("actor %q, want the agent's SPIRE ID %s", ar.Actor, e.agentID)
	}
	var wk struct {
		Origin string `json:"origin"`
	}
	e.getJSON(t, "/.well-known/ztlog", &wk)
	var jwks jose.JSONWebKeySet
	e.getJSON(t, "/v1/receipts/jwks.json", &jwks)
	claims, err := receipt.Verify(ar.Receipt, &jwks, receipt.Expect{Issuer: wk.Origin, Audience: e.brokerID.String(),
		ActionDigest: ar.ActionDigest, Now: time.Now()})
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	if claims.LogIndex != ar.Log.Index {
		t.Errorf("receipt log_index %d, decision index %d", claims.LogIndex, ar.Log.Index)
	}
	if claims.Subject != e.agentID.String() {
		t.Errorf("receipt sub %q, want %s", claims.Subject, e.agentID)
	}
	d := e.decision(t, ar.Log.Index)
	if d.Effect != entry.Allow {
		t.Errorf("committed effect %q, want allow", d.Effect)
	}
	if d.Actor != e.agentID.String() {
		t.Errorf("committed actor %q, want %s", d.Actor, e.agentID)
	}
	if d.Authn.Method != "x509-svid" {
		t.Errorf("committed authn method %q, want x509-svid", d.Authn.Method)
	}
}

// brokerProc is a running `zt broker --workload-api`.
type brokerProc struct {
	*proc
	addr string
}

// runReport is the part of zt run's --report the test reads.
type runReport struct {
	Decision      string  `json:"decision"`
	DecisionIndex uint64  `json:"decision_index"`
	Outcome       string  `json:"outcome"`
	ResultIndex   *uint64 `json:"result_index"`
	ResultError   string  `json:"result_error"`
}

// ztRun runs `zt run --workload-api` handing the work to the broker.
func (e *ztlogEnv) ztRun(t *testing.T, b *brokerProc, resource string, argv ...string) (int, string, string, runReport) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	args := []string{"run", "--server", e.url(), "--workload-api", e.a.WorkloadAPI(), "--server-id", e.serverID.String(),
		"--broker-url", "https://" + b.addr, "--broker", e.brokerID.String(), "--model", "anthropic/claude-sonnet-4",
		"--report", report, "--timeout", "20s", "--action", "demo.echo", "--resource", resource, "--"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.ztAgent, append(args, argv...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("zt run: %v", err)
	}
	var rep runReport
	if b, err := os.ReadFile(report); err == nil {
		json.Unmarshal(b, &rep)
	}
	return code, stdout.String(), stderr.String(), rep
}

// startBroker starts `zt broker --workload-api` (the broker's copy of zt).
func startBroker(t *testing.T, e *ztlogEnv) *brokerProc {
	b := &brokerProc{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	b.proc = startProc(t, "zt broker", nil, e.ztBroker, "broker", "--server", e.url(), "--workload-api", e.a.WorkloadAPI(),
		"--server-id", e.serverID.String(), "--listen", b.addr, "--replay", filepath.Join(e.root, "broker.replay"),
		"--outbox", filepath.Join(e.root, "broker.outbox"), "--outbox-interval", "1s")
	waitFor(t, "zt broker ready", 60*time.Second, func() error {
		if b.exited() {
			return fmt.Errorf("zt broker exited: %s", tail(b.out.String(), 10))
		}
		if !strings.Contains(b.out.String(), "broker ready") {
			return errors.New("not yet")
		}
		return nil
	})
	return b
}

// testBrokerRun: zt broker (its SVID from SPIRE) takes work from zt run
// (the agent's SVID from SPIRE), runs it and commits its result.
func testBrokerRun(t *testing.T, e *ztlogEnv, b *brokerProc) {
	code, stdout, stderr, rep := e.ztRun(t, b, "demo://broker", "echo", "hello from spire")
	if code != 0 {
		t.Fatalf("zt run --workload-api via zt broker: exit %d, want 0: %s", code, stderr)
	}
	if stdout != "hello from spire\n" {
		t.Errorf("stdout %q, want the command's output", stdout)
	}
	if rep.ResultIndex == nil {
		t.Fatalf("no result committed: %s (%s)", rep.ResultError, stderr)
	}
	d := e.decision(t, rep.DecisionIndex)
	if d.Effect != entry.Allow {
		t.Errorf("decision effect %q, want allow", d.Effect)
	}
	if d.Attestation == nil {
		t.Fatal("the decision carries no runtime attestation")
	}
	if got := d.Attestation.Claims["signer"]; got != e.agentID.String() {
		t.Errorf("attestation signer %q, want the agent's SPIRE ID %s", got, e.agentID)
	}
	res, ok := e.entry(t, *rep.ResultIndex).(*entry.Result)
	if !ok {
		t.Fatalf("log entry %d is not a result", *rep.ResultIndex)
	}
	if res.DecisionIndex != rep.DecisionIndex {
		t.Errorf("result links decision %d, want %d", res.DecisionIndex, rep.DecisionIndex)
	}
	if res.Outcome != "ok" {
		t.Errorf("result outcome %q, want ok", res.Outcome)
	}
	if res.Broker != e.brokerID.String() {
		t.Errorf("result broker %q, want the broker's SPIRE ID %s", res.Broker, e.brokerID)
	}
	if res.ActionDigest != d.ActionDigest {
		t.Errorf("result action digest %s, decision's %s", res.ActionDigest, d.ActionDigest)
	}
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}

// peerSerial is the serial of the X.509-SVID that the server at addr, of
// SPIFFE ID id, presents to a client authenticated with src.
func peerSerial(addr string, src *workloadapi.X509Source, id spiffeid.ID) (string, error) {
	conn, err := tls.DialWithDialer(&netDialer, "tcp", addr, tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(id)))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber), nil
}

// testRotation keeps deciding while every SVID rotates — the log's, the
// agent's (a new zt decide each time), the broker's, and a long-lived SDK
// client's — until the first SVIDs have expired; no decision may fail.
// Then the broker, started before the rotation, still runs work and
// commits its result.
func testRotation(t *testing.T, e *ztlogEnv, b *brokerProc) {
	// The SDK binds the broker into the action digest it checks, so it
	// names the log's default broker.
	sdk, err := client.New(client.Config{URL: e.url(), SVID: e.sdkSource, Bundles: e.sdkSource, ServerID: e.serverID, Broker: e.brokerID.String()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.sdkSource.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	serials := map[string]map[string]bool{"ztlog serve": {}, "zt broker": {}, "zt decide": {}, "sdk client": {}}
	expiries := map[string]time.Time{"sdk client": first.Certificates[0].NotAfter}
	var failures []string
	dialErrs := map[string]error{} // the last failure to read a server's SVID
	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	// rotated: every SVID seen in two versions, and a whole round made
	// after the first SVIDs of both clients expired (a connection kept
	// from before would then be refused).
	rotated := func(roundStart time.Time) bool {
		for _, s := range serials {
			if len(s) < 2 {
				return false
			}
		}
		for _, exp := range expiries {
			if roundStart.Before(exp.Add(time.Second)) {
				return false
			}
		}
		return true
	}
	n := 0
	for {
		roundStart := time.Now()
		if roundStart.After(deadline) {
			for _, f := range failures {
				t.Errorf("failed decision during SVID rotation: %s", f)
			}
			counts := map[string]int{}
			for k, v := range serials {
				counts[k] = len(v)
			}
			t.Fatalf("not every SVID rotated within %s: SVIDs seen %v (last errors reading server SVIDs: %v)", deadline.Sub(start), counts, dialErrs)
		}
		n++
		code, ar, stderr := e.decide(t, e.a.WorkloadAPI(), "demo.echo", fmt.Sprintf("demo://rotation/%d", n))
		if code != 0 || ar == nil {
			failures = append(failures, fmt.Sprintf("%s zt decide #%d: exit %d: %s", time.Since(start).Round(time.Millisecond), n, code, strings.TrimSpace(stderr)))
		} else {
			d := e.decision(t, ar.Log.Index)
			serials["zt decide"][d.Authn.Serial] = true
			if _, ok := expiries["zt decide"]; !ok {
				exp, err := entry.ParseTime(d.Authn.Expires)
				if err != nil {
					t.Fatalf("decision authn.expires %q: %v", d.Authn.Expires, err)
				}
				expiries["zt decide"] = exp
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		dec, err := sdk.Decide(ctx, client.Request{Action: "demo.echo", Resource: fmt.Sprintf("demo://rotation/sdk/%d", n)})
		cancel()
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("%s sdk client #%d: %v", time.Since(start).Round(time.Millisecond), n, err))
		case !dec.Allow:
			failures = append(failures, fmt.Sprintf("%s sdk client #%d: %s", time.Since(start).Round(time.Millisecond), n, dec.Response.Decision))
		}
		if s, err := e.sdkSource.GetX509SVID(); err == nil {
			serials["sdk client"][fmt.Sprintf("%x", s.Certificates[0].SerialNumber)] = true
		}
		for name, peer := range map[string]struct {
			addr string
			id   spiffeid.ID
		}{"ztlog serve": {e.addr, e.serverID}, "zt broker": {b.addr, e.brokerID}} {
			if s, err := peerSerial(peer.addr, e.adminSrc, peer.id); err == nil {
				serials[name][s] = true
			} else {
				dialErrs[name] = err
			}
		}
		if rotated(roundStart) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("%d rounds over %s; SVIDs seen: %d ztlog serve, %d zt broker, %d zt decide, %d sdk client",
		n, time.Since(start).Round(time.Millisecond), len(serials["ztlog serve"]), len(serials["zt broker"]), len(serials["zt decide"]), len(serials["sdk client"]))
	for _, f := range failures {
		t.Errorf("failed decision during SVID rotation: %s", f)
	}

	// The broker's SVID has rotated; it still takes work and commits.
	code, stdout, stderr, rep := e.ztRun(t, b, "demo://after-rotation", "echo", "after rotation")
	if code != 0 {
		t.Fatalf("zt run via the broker after rotation: exit %d, want 0: %s", code, stderr)
	}
	if stdout != "after rotation\n" {
		t.Errorf("stdout %q after rotation", stdout)
	}
	if rep.ResultIndex == nil {
		t.Fatalf("no result committed after rotation: %s", rep.ResultError)
	}
}

// testJWTSVID: a JWT-SVID fetched from SPIRE's Workload API, audience the
// log's SPIFFE ID, authenticates POST /actions (the ZT JavaScript SDK's
// call) over server-authenticated TLS; one for another audience does not.
func testJWTSVID(t *testing.T, e *ztlogEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: e.serverID.String(), Subject: e.sdkID},
		workloadapi.WithAddr(e.a.WorkloadAPI()))
	if err != nil {
		t.Fatalf("JWT-SVID from the Workload API: %v", err)
	}
	// TLS that authenticates the server only: the caller is the token.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.TLSClientConfig(e.sdkSource, tlsconfig.AuthorizeID(e.serverID))}}
	post := func(token string) (*http.Response, []byte) {
		body, _ := json.Marshal(api.LegacyActionRequest{Actor: e.sdkID.String(), Action: "demo.echo", Resource: "demo://jwt"})
		req, _ := http.NewRequest(http.MethodPost, e.url()+"/actions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST /actions: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := post(svid.Marshal())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /actions with a SPIRE JWT-SVID: HTTP %d, want 200: %s", resp.StatusCode, body)
	}
	var la api.LegacyActionResponse
	if err := json.Unmarshal(body, &la); err != nil {
		t.Fatal(err)
	}
	if !la.OK {
		t.Errorf("ok = false: %s", body)
	}
	if la.Actor != e.sdkID.String() {
		t.Errorf("actor %q, want %s", la.Actor, e.sdkID)
	}
	d := e.decision(t, la.Audit.Index)
	if d.Authn.Method != "jwt-svid" {
		t.Errorf("committed authn method %q, want jwt-svid", d.Authn.Method)
	}
	if d.Effect != entry.Allow {
		t.Errorf("committed effect %q, want allow", d.Effect)
	}

	other, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "spiffe://ztlog.test/not-the-log", Subject: e.sdkID},
		workloadapi.WithAddr(e.a.WorkloadAPI()))
	if err != nil {
		t.Fatalf("JWT-SVID for another audience: %v", err)
	}
	if resp, body := post(other.Marshal()); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a JWT-SVID for another audience: HTTP %d, want 401: %s", resp.StatusCode, body)
	}
}

// testFederation: an agent of partner.test, its SVID from its own SPIRE, is
// authenticated by the log through the federated bundle (fetched from
// partner.test's bundle endpoint): a committed deny while it is not
// registered, an allow once it is.
func testFederation(t *testing.T, e *ztlogEnv) {
	code, ar, stderr := e.decide(t, e.b.WorkloadAPI(), "demo.echo", "demo://federated")
	if code != 1 {
		t.Fatalf("partner agent, not registered: exit %d, want 1 (a committed deny): %s", code, stderr)
	}
	if ar.Actor != e.partnerID.String() {
		t.Errorf("actor %q, want the partner agent %s", ar.Actor, e.partnerID)
	}
	if len(ar.Reasons) == 0 || ar.Reasons[0].Code != "agent.unregistered" {
		t.Errorf("reasons %+v, want agent.unregistered", ar.Reasons)
	}

	e.register(t, e.partnerID)
	code, ar, stderr = e.decide(t, e.b.WorkloadAPI(), "demo.echo", "demo://federated")
	if code != 0 {
		t.Fatalf("partner agent, registered: exit %d, want 0 (allow): %s", code, stderr)
	}
	d := e.decision(t, ar.Log.Index)
	if d.Actor != e.partnerID.String() {
		t.Errorf("committed actor %q, want %s", d.Actor, e.partnerID)
	}
	if d.Authn.Method != "x509-svid" {
		t.Errorf("committed authn method %q, want x509-svid", d.Authn.Method)
	}
	if d.Effect != entry.Allow {
		t.Errorf("committed effect %q, want allow", d.Effect)
	}
}
