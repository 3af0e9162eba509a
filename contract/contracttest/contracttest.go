// Package contracttest runs a real ztlog service for tests of the parts
// that talk to it (brokers, the SDK, results): a Tessera POSIX log in a
// temp dir, mutual TLS on 127.0.0.1 with SVIDs from a test CA, the example
// policy, the decision path (gate) and POST /v1/results. Nothing in it is a
// mock; it is the production wiring with test identities.
package contracttest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/internal/devca"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/log/witnessing"
)

// The test trust domain and its identities.
var (
	TD       = spiffeid.RequireTrustDomainFromString("dev.ztlog.local")
	ServerID = spiffeid.RequireFromPath(TD, "/ztlog")
	AgentID  = spiffeid.RequireFromPath(TD, "/agent/demo")
	BrokerID = spiffeid.RequireFromPath(TD, "/broker/demo")
	AdminID  = spiffeid.RequireFromPath(TD, "/admin")
)

// Origin is the test log's origin.
const Origin = "test.example/ztlog"

// Options adjust the server.
type Options struct {
	// PolicyDir is an OPA policy directory (default: the repository's
	// testdata/policies/opa).
	PolicyDir string
	// ReceiptTTL (default the gate's).
	ReceiptTTL time.Duration
	// Witnessing, when set, gives the log of key its witness collection
	// and the trust policy text it was built from (called once):
	// checkpoints are published with its quorum's cosignatures, witnessed
	// assurance is possible, and TrustPolicy returns that text.
	Witnessing func(key *ztlog.Key) (*witnessing.Collector, string)
	// ResultClaims, when set, is the server's results.Claims (as several
	// frontends of one log have).
	ResultClaims results.Claims
}

// Server is a running ztlog service.
type Server struct {
	t    testing.TB
	dir  string
	opts Options
	// URL is https://127.0.0.1:port.
	URL string
	// CA issues the test SVIDs; Src is the server's identity source
	// (its bundles verify any SVID the CA issues).
	CA  *devca.CA
	Src identity.Source
	// Key is the log's checkpoint key.
	Key     *ztlog.Key
	Svc     *server.Service
	Gate    *gate.Gate
	Results *results.Service
	rk      *receipt.Key
	reg     *agents.Registry
	cancel  context.CancelFunc
	done    chan error
	// witnessing is Options.Witnessing's collector, if any.
	witnessing *witnessing.Collector
	policyText string
}

var klogOnce sync.Once

// Start starts a server; it stops when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	// Tessera logs through klog; silence it once (setting it again would
	// race with the goroutines of logs still closing).
	klogOnce.Do(func() { klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) })
	ca, err := devca.New(TD)
	if err != nil {
		t.Fatal(err)
	}
	skey, _, _ := ztlog.GenerateKey(Origin)
	key, _ := ztlog.ParseKey(skey)
	rk, _ := receipt.GenerateKey("")
	s := &Server{t: t, dir: t.TempDir(), opts: o, CA: ca, Key: key, rk: rk}
	idDir := t.TempDir()
	svid, _ := ca.IssueX509SVID(ServerID, devca.SVIDOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, TTL: 24 * time.Hour})
	devca.WriteSVID(filepath.Join(idDir, "server"), svid)
	b, _ := ca.Bundle().Marshal()
	os.WriteFile(filepath.Join(idDir, "bundle.json"), b, 0o644)
	if s.Src, err = identity.FromFiles(identity.Files{Cert: filepath.Join(idDir, "server.pem"), Key: filepath.Join(idDir, "server.key"), Bundle: filepath.Join(idDir, "bundle.json")}); err != nil {
		t.Fatal(err)
	}
	if o.Witnessing != nil {
		s.witnessing, s.policyText = o.Witnessing(key)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func repoPath(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

func (s *Server) start() {
	t := s.t
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := s.opts.PolicyDir
	if dir == "" {
		dir = repoPath("testdata/policies/opa")
	}
	p, err := pdp.Load(ctx, "opa", dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := server.New(ctx, server.Config{
		Storage: posix.Opener(posix.Config{Dir: filepath.Join(s.dir, "log")}), Key: s.Key, Logger: logger,
		CheckpointInterval: 100 * time.Millisecond, PlainHTTPReads: true, Witnessing: s.witnessing,
		ResultClaims: s.opts.ResultClaims,
		Decision: &server.DecisionPath{Identity: s.Src, PDP: pdp.NewPDP(p, 5*time.Second), Receipts: receipt.NewKeyset(s.rk),
			Admins: []spiffeid.ID{AdminID}, DefaultBroker: BrokerID.String(), ReceiptTTL: s.opts.ReceiptTTL,
			CheckpointWait: 3 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, res, reg := svc.Gate(), svc.Results(), svc.Agents()
	s.Svc, s.Gate, s.Results, s.reg = svc, g, res, reg
	addr := "127.0.0.1:0"
	if s.URL != "" {
		addr = s.URL[len("https://"):]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.URL = "https://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- svc.Serve(sctx, ln) }()
	if _, ok := reg.Lookup(AgentID.String()); !ok {
		s.Register(AgentID, BrokerID)
	}
}

// Stop stops the server (its log stays in the temp dir).
func (s *Server) Stop() {
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

// Restart stops the server and starts it again on the same address, log,
// keys and identities.
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// Register registers an agent allowed to hand work to brokers.
func (s *Server) Register(id spiffeid.ID, brokers ...spiffeid.ID) {
	var bs []string
	for _, b := range brokers {
		bs = append(bs, b.String())
	}
	_, _, _, err := s.reg.Commit(context.Background(), &api.AgentRequest{Op: "register", ID: id.String(), Brokers: bs}, AdminID.String(), "test-register", time.Now())
	if err != nil {
		s.t.Fatalf("register %s: %v", id, err)
	}
}

// SVID issues an X.509-SVID for id.
func (s *Server) SVID(id spiffeid.ID) *x509svid.SVID {
	svid, err := s.CA.IssueX509SVID(id, devca.SVIDOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return svid
}

// Client is an HTTP client presenting svid (nil: none) that authenticates
// the server as ServerID.
func (s *Server) Client(svid *x509svid.SVID) *http.Client {
	cfg := identity.ClientTLS(svid, s.Src, ServerID, TD)
	if svid == nil {
		cfg.GetClientCertificate = nil
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// TLS is the client TLS configuration Client uses.
func (s *Server) TLS(svid *x509svid.SVID) *tls.Config {
	return identity.ClientTLS(svid, s.Src, ServerID, TD)
}

// JWKS is the receipt key set published now.
func (s *Server) JWKS() *jose.JSONWebKeySet { return s.Gate.JWKS().(*jose.JSONWebKeySet) }

// TrustPolicy is a trust policy (internal/trustpolicy) for this log with no
// witnesses.
func (s *Server) TrustPolicy() string {
	if s.witnessing != nil {
		return s.policyText
	}
	return fmt.Sprintf("log %s\nquorum none\n", s.Key.VerifierKey)
}

// Entry returns the entry at i once a checkpoint covers it.
func (s *Server) Entry(i uint64) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Svc.Log().Await(ctx, i); err != nil {
		s.t.Fatalf("await %d: %v", i, err)
	}
	leaf, _, err := s.Svc.Log().Entry(ctx, i)
	if err != nil {
		s.t.Fatalf("entry %d: %v", i, err)
	}
	return leaf
}

// Size is the number of integrated entries.
func (s *Server) Size() uint64 {
	n, err := s.Svc.Log().IntegratedSize(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}
