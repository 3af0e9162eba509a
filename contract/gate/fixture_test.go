package gate_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/receipt"
	service "github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/internal/devca"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/log/witnessing"
)

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

var (
	td       = spiffeid.RequireTrustDomainFromString("dev.ztlog.local")
	serverID = spiffeid.RequireFromPath(td, "/ztlog")
	agentID  = spiffeid.RequireFromPath(td, "/agent/demo")
	otherID  = spiffeid.RequireFromPath(td, "/agent/other")
	adminID  = spiffeid.RequireFromPath(td, "/admin")
	brokerID = spiffeid.RequireFromPath(td, "/broker/demo")
)

const origin = "test.example/ztlog"

// server is a real ztlog service (Tessera POSIX log in a temp dir, mTLS on
// 127.0.0.1, the example OPA policy) with the gate mounted.
type server struct {
	t   testing.TB
	dir string
	key *ztlog.Key
	ca  *devca.CA
	src identity.Source
	// idDir holds the server's SVID and trust bundle files (src reads
	// them; Reload re-reads them).
	idDir  string
	svc    *service.Service
	gate   *gate.Gate
	pdp    *pdp.PDP
	url    string
	logs   *devproc.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

type options struct {
	maxPending  int
	batchMaxAge time.Duration
	commitDelay time.Duration
	// checkpointInterval defaults to 100ms, to keep tests short; the
	// benchmarks use ztlog serve's default.
	checkpointInterval time.Duration
	decisionTimeout    time.Duration
	policyDir          string
	policyEngine       string
	users              *identity.UserVerifier
	guardrails         bool
	// witness, when set, is the log's one witness (quorum: it), a real
	// witness server on loopback (see witness_test.go).
	witness     *testWitness
	witnessWait time.Duration
}

func newServer(t testing.TB, o options) *server {
	t.Helper()
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	skey, _, _ := ztlog.GenerateKey(origin)
	key, _ := ztlog.ParseKey(skey)
	dir := t.TempDir()
	if d := os.Getenv(benchDirEnv); d != "" {
		if _, isBench := t.(*testing.B); isBench {
			var err error
			if dir, err = os.MkdirTemp(d, "ztlog-bench"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
		}
	}
	s := &server{t: t, dir: dir, key: key, ca: ca}
	s.start(o)
	return s
}

func (s *server) start(o options) {
	t := s.t
	t.Helper()
	if s.src == nil {
		idDir := t.TempDir()
		svid, _ := s.ca.IssueX509SVID(serverID, devca.SVIDOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
		devca.WriteSVID(filepath.Join(idDir, "server"), svid)
		b, _ := s.ca.Bundle().Marshal()
		os.WriteFile(filepath.Join(idDir, "bundle.json"), b, 0o644)
		src, err := identity.FromFiles(identity.Files{Cert: filepath.Join(idDir, "server.pem"), Key: filepath.Join(idDir, "server.key"), Bundle: filepath.Join(idDir, "bundle.json")})
		if err != nil {
			t.Fatal(err)
		}
		s.src, s.idDir = src, idDir
	}
	s.logs = &devproc.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(s.logs, nil))
	ctx := context.Background()
	cpInterval := o.checkpointInterval
	if cpInterval == 0 {
		cpInterval = 100 * time.Millisecond
	}
	engine := o.policyEngine
	if engine == "" {
		engine = "opa"
	}
	pdir := o.policyDir
	if pdir == "" {
		pdir = "../../testdata/policies/" + engine
	}
	p, err := pdp.Load(ctx, engine, pdir, "test")
	if err != nil {
		t.Fatal(err)
	}
	s.pdp = pdp.NewPDP(p, 5*time.Second)
	rk, _ := receipt.GenerateKey("")
	var wc *witnessing.Collector
	if o.witness != nil {
		wc = o.witness.collector(t, s.key)
	}
	svc, err := service.New(ctx, service.Config{
		Storage: posix.Opener(posix.Config{Dir: filepath.Join(s.dir, "log")}), Key: s.key, Logger: logger,
		CheckpointInterval: cpInterval, MaxPending: o.maxPending, BatchMaxAge: o.batchMaxAge, CommitDelay: o.commitDelay,
		PlainHTTPReads: true, Witnessing: wc,
		Decision: &service.DecisionPath{Identity: s.src, PDP: s.pdp, Receipts: receipt.NewKeyset(rk),
			Admins: []spiffeid.ID{adminID}, DefaultBroker: brokerID.String(), DecisionTimeout: o.decisionTimeout,
			CheckpointWait: 3 * time.Second, Users: service.UserTokens{Verifier: o.users}, Guardrails: o.guardrails,
			WitnessWait: o.witnessWait},
	})
	if err != nil {
		t.Fatal(err)
	}
	g := svc.Gate()
	s.svc, s.gate = svc, g
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.url = "https://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- svc.Serve(sctx, ln) }()
	t.Cleanup(s.stop)
}

func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Error("server did not stop")
	}
	s.cancel = nil
}

// client is an agent (or admin) with an X.509-SVID, or a bearer token.
type client struct {
	s     *server
	http  *http.Client
	token string
}

func (s *server) mtls(id spiffeid.ID) *client {
	svid, err := s.ca.IssueX509SVID(id, devca.SVIDOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return s.clientWith(svid, "")
}

func (s *server) bearer(id spiffeid.ID) *client {
	tok, err := s.ca.IssueJWTSVID(id, []string{serverID.String()}, time.Minute)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.clientWith(nil, tok)
}

func (s *server) anonymous() *client { return s.clientWith(nil, "") }

func (s *server) clientWith(svid *x509svid.SVID, token string) *client {
	var cfg *tls.Config
	cfg = identity.ClientTLS(svid, s.src, serverID, td)
	if svid == nil {
		cfg.GetClientCertificate = nil
	}
	return &client{s: s, token: token, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64}}}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

func (c *client) do(method, path string, body string, hdr ...string) response {
	c.s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, c.s.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *server) register(id spiffeid.ID, extra string) {
	s.t.Helper()
	r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"register","id":"`+id.String()+`"`+extra+`}`)
	if r.status != 200 {
		s.t.Fatalf("register %s: %d %s", id, r.status, r.body)
	}
}

func (s *server) size() uint64 {
	n, err := s.svc.Log().IntegratedSize(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// entry reads the committed leaf at index (waiting for publication).
func (s *server) entry(index uint64) []byte {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.svc.Log().Await(ctx, index); err != nil {
		s.t.Fatalf("await %d: %v", index, err)
	}
	leaf, _, err := s.svc.Log().Entry(ctx, index)
	if err != nil {
		s.t.Fatal(err)
	}
	return leaf
}

func (s *server) jwks() *jose.JSONWebKeySet {
	var wk struct {
		JWKS jose.JSONWebKeySet `json:"receipt_jwks"`
	}
	s.anonymous().do("GET", "/.well-known/ztlog", "").json(s.t, &wk)
	return &wk.JWKS
}
