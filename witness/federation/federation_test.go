package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	ztlog "github.com/zt-infra/ztlog/log"
	logserver "github.com/zt-infra/ztlog/log/httpread"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/verifier/splitview"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/evidence"
	"github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
	"github.com/zt-infra/ztlog/witness/tlogwitness"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	klog.SetSlogLogger(quiet)
	os.Exit(m.Run())
}

// ---- a test PKI: a SPIFFE trust domain and a web CA for its bundle endpoint

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string, uri *url.URL) *ca {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	if uri != nil {
		tmpl.URIs = []*url.URL{uri}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert, key}
}

// issue makes a server certificate for 127.0.0.1, with a SPIFFE ID URI SAN
// when id is set (an X.509-SVID).
func (c *ca) issue(t *testing.T, id string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if id != "" {
		u, _ := url.Parse(id)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serveTLS(t *testing.T, h http.Handler, cert tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// ---- logs and witnesses

func openLog(t *testing.T, key *ztlog.Key) *ztlog.Log {
	t.Helper()
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	return l
}

func grow(t *testing.T, l *ztlog.Log, n int, prefix string) *ztlog.Checkpoint {
	t.Helper()
	var idx uint64
	for i := 0; i < n; i++ {
		var err error
		if idx, err = l.Append(context.Background(), []byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp, err := l.Await(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func logHandler(l *ztlog.Log) http.Handler {
	r := mux.NewRouter()
	logserver.Register(r, l)
	return r
}

// switchable serves whichever handler is current: the log a URL shows can
// change under the federator, as a misbehaving log's would.
type switchable struct{ h atomic.Pointer[http.Handler] }

func (s *switchable) set(h http.Handler)                               { s.h.Store(&h) }
func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

type witness struct {
	c   *cosigner.Cosigner
	url string
}

func startWitness(t *testing.T, name, logsJSON string) *witness {
	t.Helper()
	skey, _, _ := cosigner.Generate(name, cosigner.Ed25519)
	c, _ := cosigner.Parse(skey)
	cfg, err := config.Parse(name, []byte(logsJSON))
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := server.New(server.Options{Cosigners: []*cosigner.Cosigner{c}, Store: st, Config: func() *config.Config { return cfg }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &witness{c: c, url: serveHTTP(t, w.Handler()) + "/"}
}

// cosign submits a log's published checkpoint to a witness directly.
func (w *witness) cosign(t *testing.T, l *ztlog.Log, old uint64) {
	t.Helper()
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	req := &tlogwitness.Request{OldSize: old, Checkpoint: cp.Note}
	if old > 0 {
		req.Proof, err = l.ConsistencyProof(context.Background(), old, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(w.url+"add-checkpoint", "text/plain", strings.NewReader(string(tlogwitness.FormatRequest(req))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cosign: %d %s", resp.StatusCode, b)
	}
}

type fixture struct {
	key      *ztlog.Key
	honest   *ztlog.Log
	fork     *ztlog.Log
	url      *switchable
	logURL   string
	local    *witness
	peer     *witness
	cfg      *config.Config
	fed      *Federator
	seen     *state.Store
	evidence string
}

const (
	trustDomain = "partner.example"
	serverID    = "spiffe://partner.example/ztlog"
)

// newFixture serves a partner log over TLS with an X.509-SVID of
// partner.example, the trust domain's SPIFFE bundle endpoint (https_web,
// with its own web CA), a local witness and a peer witness, and a
// federator configured for all of it. serverIDInConfig is what the
// configuration authorizes.
func newFixture(t *testing.T, serverIDInConfig string) *fixture {
	t.Helper()
	return newFixtureAuth(t, serverIDInConfig, "")
}

// bundleEndpointID is the SPIFFE ID the partner's bundle endpoint serves
// with in SPIFFE-authenticated mode.
const bundleEndpointID = "spiffe://" + trustDomain + "/spire/server"

// newFixtureAuth is newFixture with the bundle endpoint authenticated by
// SPIFFE (the endpoint serves with an X.509-SVID; the witness trusts it by
// the configured endpoint ID and a bootstrap bundle) when endpointIDInConfig
// is set, and by a web CA otherwise.
func newFixtureAuth(t *testing.T, serverIDInConfig, endpointIDInConfig string) *fixture {
	t.Helper()
	dir := t.TempDir()
	skey, _, _ := ztlog.GenerateKey("partner.example/ztlog")
	key, _ := ztlog.ParseKey(skey)
	f := &fixture{key: key, url: &switchable{}, evidence: filepath.Join(dir, "evidence")}
	f.honest = openLog(t, key)
	f.fork = openLog(t, key) // the same key, another history
	f.url.set(logHandler(f.honest))

	td := spiffeid.RequireTrustDomainFromString(trustDomain)
	spiffeCA := newCA(t, "partner.example SPIFFE CA", &url.URL{Scheme: "spiffe", Host: trustDomain})
	webCA := newCA(t, "partner.example web CA", nil)
	f.logURL = serveTLS(t, f.url, spiffeCA.issue(t, serverID)) + "/log/"
	bundle := spiffebundle.FromX509Authorities(td, []*x509.Certificate{spiffeCA.cert})
	bh, err := federation.NewHandler(td, bundle)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "web-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: webCA.cert.Raw}), 0o644)
	var bundleURL, endpointAuth string
	if endpointIDInConfig == "" {
		bundleURL = serveTLS(t, bh, webCA.issue(t, ""))
		endpointAuth = fmt.Sprintf(`"bundle_endpoint_ca": %q`, caFile)
	} else {
		bundleURL = serveTLS(t, bh, spiffeCA.issue(t, bundleEndpointID))
		bootstrap := filepath.Join(dir, "bootstrap-bundle.pem")
		os.WriteFile(bootstrap, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spiffeCA.cert.Raw}), 0o644)
		endpointAuth = fmt.Sprintf(`"bundle_endpoint_spiffe_id": %q, "bootstrap_bundle": %q`, endpointIDInConfig, bootstrap)
	}

	logs := fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, key.Origin(), key.VerifierKey)
	f.local = startWitness(t, "witness.example/local", logs)
	f.peer = startWitness(t, "witness.partner.example/peer", logs)
	raw := fmt.Sprintf(`{
  "logs": [{"origin": %q, "verifier_key": %q, "url": %q, "witness": true,
            "federation": {"trust_domain": %q, "bundle_endpoint": %q, %s, "server_spiffe_id": %q}}],
  "peers": [{"name": "peer", "verifier_key": %q, "url": %q}],
  "federate": {"witness_url": %q, "witness_key": %q, "interval": "1s"}
}`, key.Origin(), key.VerifierKey, f.logURL, trustDomain, bundleURL+"/", endpointAuth, serverIDInConfig,
		f.peer.c.VerifierKey, f.peer.url, f.local.url, f.local.c.VerifierKey)
	f.cfg, err = config.Parse("federation test", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	f.seen, err = state.Open(filepath.Join(dir, "seen"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.seen.Close() })
	ev, err := evidence.New(f.evidence, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.fed, err = New(Options{Config: func() *config.Config { return f.cfg }, Seen: f.seen, Evidence: ev,
		Reporter: "witness.example/local federate", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// latest reads a witness's latest cosigned checkpoint size.
func (w *witness) latest(t *testing.T, origin string) uint64 {
	t.Helper()
	resp, err := http.Get(w.url + state.OriginHash(origin) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 404 {
		return 0
	}
	b, _ := io.ReadAll(resp.Body)
	var size uint64
	fmt.Sscanf(strings.SplitN(string(b), "\n", 3)[1], "%d", &size)
	return size
}

func (f *fixture) evidenceFiles(t *testing.T) []*splitview.Verdict {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(f.evidence, "split-view-*.json"))
	lv, _ := splitview.VerifierKeys([]string{f.key.VerifierKey})
	var out []*splitview.Verdict
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		v, err := splitview.Verify(raw, lv)
		if err != nil {
			t.Fatalf("%s does not verify: %v", file, err)
		}
		out = append(out, v)
	}
	return out
}

func TestHonestPartnerIsCosignedAndCrossChecked(t *testing.T) {
	f := newFixture(t, serverID)
	ctx := context.Background()
	grow(t, f.honest, 5, "h")
	res := f.fed.Check(ctx, f.cfg.Logs[0])
	if len(res.Errors) != 0 || len(res.SplitViews) != 0 || !res.Cosigned || res.Size != 5 {
		t.Fatalf("round 1: %+v", res)
	}
	if got := f.local.latest(t, f.key.Origin()); got != 5 {
		t.Fatalf("local witness cosigned size %d, want 5", got)
	}
	// The peer has cosigned too (it is the partner's own witness).
	f.peer.cosign(t, f.honest, 0)
	grow(t, f.honest, 7, "h2")
	res = f.fed.Check(ctx, f.cfg.Logs[0])
	if len(res.Errors) != 0 || len(res.SplitViews) != 0 || !res.Cosigned || res.Size != 12 {
		t.Fatalf("round 2: %+v", res)
	}
	if got := f.local.latest(t, f.key.Origin()); got != 12 {
		t.Fatalf("local witness cosigned size %d, want 12", got)
	}
	seen, _ := f.seen.Load(f.key.Origin())
	if !strings.HasPrefix(string(seen), "partner.example/ztlog\n12\n") {
		t.Fatalf("last seen %q", seen)
	}
	if v := f.evidenceFiles(t); len(v) != 0 {
		t.Fatalf("evidence for an honest log: %+v", v)
	}
}

func TestServerOutsideTheExpectedIdentityIsRefused(t *testing.T) {
	f := newFixture(t, "spiffe://partner.example/someone-else")
	grow(t, f.honest, 3, "h")
	res := f.fed.Check(context.Background(), f.cfg.Logs[0])
	if len(res.Errors) == 0 || res.Size != 0 || res.Cosigned {
		t.Fatalf("accepted a server whose SPIFFE ID is not the configured one: %+v", res)
	}
	t.Logf("refused: %v", res.Errors[0])
	if !strings.Contains(res.Errors[0].Error(), "someone-else") && !strings.Contains(res.Errors[0].Error(), "unexpected ID") {
		t.Fatalf("error does not say why: %v", res.Errors[0])
	}
	if seen, _ := f.seen.Load(f.key.Origin()); seen != nil {
		t.Fatal("a checkpoint from an unauthenticated server was remembered")
	}
}

// The partner's bundle endpoint authenticated by SPIFFE (its X.509-SVID,
// trusted through a bootstrap bundle and the configured endpoint ID) rather
// than a web CA; an endpoint serving another SPIFFE ID is refused.
func TestSPIFFEAuthenticatedBundleEndpoint(t *testing.T) {
	f := newFixtureAuth(t, serverID, bundleEndpointID)
	grow(t, f.honest, 4, "h")
	res := f.fed.Check(context.Background(), f.cfg.Logs[0])
	if len(res.Errors) != 0 || !res.Cosigned || res.Size != 4 {
		t.Fatalf("SPIFFE-authenticated bundle endpoint: %+v", res)
	}

	g := newFixtureAuth(t, serverID, "spiffe://"+trustDomain+"/not-the-endpoint")
	grow(t, g.honest, 4, "h")
	res = g.fed.Check(context.Background(), g.cfg.Logs[0])
	if len(res.Errors) == 0 || res.Cosigned || res.Size != 0 {
		t.Fatalf("accepted a bundle endpoint serving another SPIFFE ID: %+v", res)
	}
	if !strings.Contains(res.Errors[0].Error(), "trust bundle of "+trustDomain) {
		t.Fatalf("error does not say the bundle fetch failed: %v", res.Errors[0])
	}
	if seen, _ := g.seen.Load(g.key.Origin()); seen != nil {
		t.Fatal("a checkpoint was remembered without a verified trust bundle")
	}
}

func TestForkedPartnerIsCaught(t *testing.T) {
	f := newFixture(t, serverID)
	ctx := context.Background()
	grow(t, f.honest, 5, "h")
	if res := f.fed.Check(ctx, f.cfg.Logs[0]); !res.Cosigned || len(res.SplitViews) != 0 {
		t.Fatalf("honest round: %+v", res)
	}
	// The partner's own witness cosigned the honest log at 10.
	grow(t, f.honest, 5, "h2")
	f.peer.cosign(t, f.honest, 0)

	// Now the URL shows a fork signed with the same key.
	grow(t, f.fork, 12, "fork")
	f.url.set(logHandler(f.fork))
	res := f.fed.Check(ctx, f.cfg.Logs[0])
	if res.Cosigned {
		t.Fatal("the local witness cosigned the fork")
	}
	if len(res.SplitViews) == 0 {
		t.Fatalf("no split view detected: %+v", res)
	}
	verdicts := f.evidenceFiles(t)
	pairs := map[[2]uint64]bool{}
	for _, v := range verdicts {
		if !v.Conclusive || v.Kind != splitview.Inconsistent {
			t.Errorf("verdict %+v, want conclusive inconsistent", v)
		}
		pairs[v.Sizes] = true
	}
	// Against the last checkpoint seen and the local witness (size 5, one
	// pair) and against the peer's (size 10).
	if !pairs[[2]uint64{5, 12}] || !pairs[[2]uint64{10, 12}] || len(verdicts) != 2 {
		t.Fatalf("evidence pairs %v", pairs)
	}
	// Nothing moved: the last seen is still the honest 5, the local witness
	// still holds 5.
	seen, _ := f.seen.Load(f.key.Origin())
	if !strings.HasPrefix(string(seen), "partner.example/ztlog\n5\n") {
		t.Fatalf("last seen %q", seen)
	}
	if got := f.local.latest(t, f.key.Origin()); got != 5 {
		t.Fatalf("local witness moved to %d", got)
	}
	// The next round files nothing new.
	f.fed.Check(ctx, f.cfg.Logs[0])
	if again := f.evidenceFiles(t); len(again) != 2 {
		t.Fatalf("%d evidence files after a repeat round", len(again))
	}
	_ = note.VerifierList
}
