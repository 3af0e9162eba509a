package broker_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/broker/sandbox"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
)

func TestMain(m *testing.M) {
	sandbox.Child()
	os.Exit(m.Run())
}

var (
	otherBroker = spiffeid.RequireFromPath(contracttest.TD, "/broker/other")
	otherAgent  = spiffeid.RequireFromPath(contracttest.TD, "/agent/other")
)

type fixture struct {
	t      *testing.T
	s      *contracttest.Server
	agent  *x509svid.SVID
	runner *sandbox.Runner
	replay string
}

func newFixture(t *testing.T) *fixture {
	if _, err := os.Stat("/usr/bin/bwrap"); err != nil {
		t.Log("bubblewrap is not installed; the local sandbox uses CLONE_NEWNET")
	}
	r, err := sandbox.New(sandbox.Config{Mode: sandbox.ModeLocal})
	if err != nil {
		t.Skipf("no Landlock here: %v", err)
	}
	s := contracttest.Start(t, contracttest.Options{})
	return &fixture{t: t, s: s, agent: s.SVID(contracttest.AgentID), runner: r, replay: filepath.Join(t.TempDir(), "replay")}
}

type option func(*broker.Config)

func (f *fixture) broker(id spiffeid.ID, opts ...option) *broker.Broker {
	f.t.Helper()
	replay, err := broker.OpenReplay(f.replay, 5*time.Second, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { replay.Close() })
	svid := f.s.SVID(id)
	cfg := broker.Config{SVID: svid, Issuer: contracttest.Origin, Keys: &receipt.HTTPKeys{Client: f.s.Client(svid), URL: f.s.URL + "/v1/receipts/jwks.json"},
		Replay: replay, Runner: f.runner, Reporter: &broker.HTTPReporter{Client: f.s.Client(svid), BaseURL: f.s.URL}}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// work asks the service for the decision and returns the work to hand
// the broker.
func (f *fixture) work(action string, m *capability.Manifest, argv ...string) (*broker.Work, *api.ActionResponse) {
	f.t.Helper()
	caps, _ := json.Marshal(m)
	args, _ := json.Marshal(broker.CommandArgs(argv))
	body := `{"action":"` + action + `","resource":"demo://hello","broker":"` + contracttest.BrokerID.String() +
		`","capabilities":` + string(caps) + `,"args":` + string(args) + `}`
	req, _ := http.NewRequest("POST", f.s.URL+"/v1/actions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.s.Client(f.agent).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ar api.ActionResponse
	if err := json.Unmarshal(raw, &ar); err != nil || ar.Decision != "allow" {
		f.t.Fatalf("decision: %d %s", resp.StatusCode, raw)
	}
	return &broker.Work{Receipt: ar.Receipt, Action: action, Resource: "demo://hello", Argv: argv, Capabilities: caps}, &ar
}

func TestHandleRunsAndReports(t *testing.T) {
	f := newFixture(t)
	b := f.broker(contracttest.BrokerID)
	m := capability.Strict(t.TempDir(), "echo")
	w, ar := f.work("demo.echo", m, "echo", "hi")
	var out bytes.Buffer
	w.Stdout = &out
	rep, err := b.Handle(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Predicate.Outcome != "ok" || out.String() != "hi\n" || rep.ReportError != nil || rep.Result == nil {
		t.Fatalf("outcome %s stdout %q report error %v", rep.Predicate.Outcome, out.String(), rep.ReportError)
	}
	if rep.ActionDigest != ar.ActionDigest || rep.Result.DecisionIndex != ar.Log.Index {
		t.Fatalf("report %+v, decision %+v", rep.Result, ar.Log)
	}
	e, _ := entry.Parse(f.s.Entry(rep.Result.Log.Index))
	r := e.(*entry.Result)
	caps, _ := m.Digest()
	if r.Outcome != "ok" || r.DecisionIndex != ar.Log.Index || r.Broker != contracttest.BrokerID.String() ||
		r.Statement.Claims["stdout.digest"] != attest.Digest([]byte("hi\n")) || r.Statement.Claims["sandbox.capabilities"] != caps {
		t.Fatalf("result entry %+v", r)
	}
}

// TestRefusedBeforeSpawn: forged, tampered, expired, mis-addressed,
// replayed receipts and work that is not what was approved are refused
// before anything runs, and nothing is reported.
func TestRefusedBeforeSpawn(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	m := capability.Strict(dir, "touch")
	legit := f.broker(contracttest.BrokerID)
	ran := func() bool { _, err := os.Stat(marker); return err == nil }

	forgedKey, _ := receipt.GenerateKey("")
	forge := func(w *broker.Work) *broker.Work {
		r, _ := receipt.Parse(w.Receipt)
		tok, _ := forgedKey.Sign(r.Claims)
		c := *w
		c.Receipt = tok
		return &c
	}
	tamper := func(w *broker.Work) *broker.Work {
		parts := strings.Split(w.Receipt, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = bytes.Replace(payload, []byte(`"log_index":`), []byte(`"log_index":1`), 1)
		c := *w
		c.Receipt = parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		return &c
	}
	edit := func(fn func(w *broker.Work)) func(*broker.Work) *broker.Work {
		return func(w *broker.Work) *broker.Work { c := *w; fn(&c); return &c }
	}
	later := func(c *broker.Config) { c.Now = func() time.Time { return time.Now().Add(10 * time.Minute) } }
	otherIssuer := func(c *broker.Config) { c.Issuer = "other.example/log" }
	bigger := *m
	bigger.Limits.TimeoutSeconds = 31
	biggerCaps, _ := json.Marshal(&bigger)

	cases := []struct {
		name   string
		broker *broker.Broker
		edit   func(*broker.Work) *broker.Work
		code   string
	}{
		{"forged (another key)", legit, forge, broker.RefuseReceipt},
		{"tampered", legit, tamper, broker.RefuseReceipt},
		{"expired", f.broker(contracttest.BrokerID, later), nil, broker.RefuseExpired},
		{"mis-addressed", f.broker(otherBroker), nil, broker.RefuseAudience},
		{"other issuer", f.broker(contracttest.BrokerID, otherIssuer), nil, broker.RefuseIssuer},
		{"other command", legit, edit(func(w *broker.Work) { w.Argv = []string{"touch", marker + "2"} }), broker.RefuseWork},
		{"other manifest", legit, edit(func(w *broker.Work) { w.Capabilities = biggerCaps }), broker.RefuseWork},
		{"other action", legit, edit(func(w *broker.Work) { w.Action = "demo.other" }), broker.RefuseWork},
		{"other caller", legit, edit(func(w *broker.Work) { w.Caller = otherAgent.String() }), broker.RefuseCaller},
		{"no manifest", legit, edit(func(w *broker.Work) { w.Capabilities = nil }), broker.RefuseCapabilities},
		{"bad manifest", legit, edit(func(w *broker.Work) { w.Capabilities = []byte(`{"v":1}`) }), broker.RefuseCapabilities},
	}
	for _, c := range cases {
		w, _ := f.work("demo.touch", m, "touch", marker)
		if c.edit != nil {
			w = c.edit(w)
		}
		size := f.s.Size()
		_, err := c.broker.Handle(context.Background(), w)
		ref, ok := broker.AsRefused(err)
		if !ok || ref.Code != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
		if ran() {
			t.Fatalf("%s: the command ran", c.name)
		}
		if f.s.Size() != size {
			t.Errorf("%s: something was committed", c.name)
		}
	}

	// Replayed: the first hand-off runs, the second is refused — also by
	// a broker started again on the same replay file.
	w, _ := f.work("demo.touch", m, "touch", marker)
	if rep, err := legit.Handle(context.Background(), w); err != nil || rep.Predicate.Outcome != "ok" || !ran() {
		t.Fatalf("first hand-off: %v", err)
	}
	os.Remove(marker)
	for _, b := range []*broker.Broker{legit, f.broker(contracttest.BrokerID)} {
		_, err := b.Handle(context.Background(), w)
		if ref, ok := broker.AsRefused(err); !ok || ref.Code != broker.RefuseReplayed {
			t.Fatalf("replay: %v", err)
		}
		if ran() {
			t.Fatal("a replayed receipt ran")
		}
	}
}

// TestUnenforceableManifestIsReported: a manifest the broker cannot
// enforce is not run; the result says why, and is committed.
func TestUnenforceableManifestIsReported(t *testing.T) {
	f := newFixture(t)
	b := f.broker(contracttest.BrokerID)
	m := capability.Strict(t.TempDir(), "echo")
	m.Profile, m.Network = "fetch", capability.Network{Mode: capability.NetAllow, Domains: []string{"api.example.com"}}
	w, _ := f.work("demo.echo", m, "echo", "hi")
	rep, err := b.Handle(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Predicate.Outcome != "error" || rep.Predicate.Error.Class != attest.ErrorSandboxSetup || rep.Result == nil {
		t.Fatalf("%+v %v", rep.Predicate, rep.ReportError)
	}
	e, _ := entry.Parse(f.s.Entry(rep.Result.Log.Index))
	if r := e.(*entry.Result); r.Outcome != "error" || r.Statement.Claims["error.class"] != "sandbox_setup" || r.ExitStatus != nil {
		t.Fatalf("result entry %+v", r)
	}
}

// TestDeniedReadAndConnectAreInTheResult: a command reading outside its
// grant, or connecting under a blocked network, fails; the committed result
// says failed, with its exit status and the stderr digest.
func TestDeniedReadAndConnectAreInTheResult(t *testing.T) {
	f := newFixture(t)
	b := f.broker(contracttest.BrokerID)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cr3t"), 0o644)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"read outside the grant", []string{"cat", secret}},
		{"connect under a blocked network", []string{"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + itoa(port)}},
	} {
		m := capability.Strict(t.TempDir(), c.argv[0])
		w, _ := f.work("demo.run", m, c.argv...)
		var errOut bytes.Buffer
		w.Stderr = &errOut
		rep, err := b.Handle(context.Background(), w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rep.Predicate.Outcome != "failed" || rep.Result == nil || !strings.Contains(errOut.String(), "Permission denied") {
			t.Fatalf("%s: outcome %s %+v, stderr %q, report %v", c.name, rep.Predicate.Outcome, rep.Predicate.Error, errOut.String(), rep.ReportError)
		}
		e, _ := entry.Parse(f.s.Entry(rep.Result.Log.Index))
		r := e.(*entry.Result)
		if r.Outcome != "failed" || r.ExitStatus == nil || *r.ExitStatus == 0 || r.Statement.Claims["stderr.digest"] != attest.Digest(errOut.Bytes()) {
			t.Fatalf("%s: result entry %+v", c.name, r)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func tlsListener(ln net.Listener, cfg *tls.Config) net.Listener { return tls.NewListener(ln, cfg) }

// TestStrictMode: with a trust policy, the broker proves the decision is
// in the log before it runs; under a policy for another log it refuses.
func TestStrictMode(t *testing.T) {
	f := newFixture(t)
	pol, err := trustpolicy.Parse([]byte(f.s.TrustPolicy()))
	if err != nil {
		t.Fatal(err)
	}
	entries := &broker.HTTPEntries{Client: f.s.Client(nil), BaseURL: f.s.URL}
	strict := f.broker(contracttest.BrokerID, func(c *broker.Config) { c.Strict = &broker.Strict{Entries: entries, Policy: pol} })
	m := capability.Strict(t.TempDir(), "echo")
	w, _ := f.work("demo.echo", m, "echo", "hi")
	if rep, err := strict.Handle(context.Background(), w); err != nil || rep.Predicate.Outcome != "ok" {
		t.Fatalf("strict, proven: %v", err)
	}

	_, otherKey, err := ztlog.GenerateKey(contracttest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	otherPol, err := trustpolicy.Parse([]byte("log " + otherKey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := f.broker(contracttest.BrokerID, func(c *broker.Config) {
		c.Strict = &broker.Strict{Entries: entries, Policy: otherPol, Wait: time.Second}
	})
	w, _ = f.work("demo.echo", m, "echo", "hi")
	_, err = wrong.Handle(context.Background(), w)
	if ref, ok := broker.AsRefused(err); !ok || ref.Code != broker.RefuseUnproven {
		t.Fatalf("strict, other log: %v", err)
	}
}

// TestWorkServer: `zt broker`'s work API over mutual TLS; the caller must
// be the receipt's actor.
func TestWorkServer(t *testing.T) {
	f := newFixture(t)
	b := f.broker(contracttest.BrokerID)
	brokerSVID := f.s.SVID(contracttest.BrokerID)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: (&broker.Server{Broker: b}).Handler()}
	go srv.Serve(tlsListener(ln, broker.ServerTLS(brokerSVID, f.s.Src, contracttest.TD)))
	defer srv.Close()
	client := func(svid *x509svid.SVID) *broker.Client {
		cfg := identity.ClientTLS(svid, f.s.Src, contracttest.BrokerID, contracttest.TD)
		return &broker.Client{HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, URL: "https://" + ln.Addr().String()}
	}
	m := capability.Strict(t.TempDir(), "echo")
	w, _ := f.work("demo.echo", m, "echo", "hi")
	req := &broker.WorkRequest{Receipt: w.Receipt, Action: w.Action, Resource: w.Resource, Argv: w.Argv, Capabilities: w.Capabilities}

	// Another agent holding the receipt is refused.
	_, err = client(f.s.SVID(otherAgent)).Submit(context.Background(), req)
	if ref, ok := broker.AsRefused(err); !ok || ref.Code != broker.RefuseCaller {
		t.Fatalf("other agent: %v", err)
	}
	resp, err := client(f.agent).Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := base64.StdEncoding.DecodeString(resp.Stdout)
	if resp.Outcome != "ok" || string(out) != "hi\n" || resp.Result == nil || len(resp.Statement) == 0 {
		t.Fatalf("response %+v", resp)
	}
	_, err = client(f.agent).Submit(context.Background(), req)
	if ref, ok := broker.AsRefused(err); !ok || ref.Code != broker.RefuseReplayed {
		t.Fatalf("replay through the API: %v", err)
	}
}
