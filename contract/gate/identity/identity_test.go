package identity_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/devca"
	"github.com/zt-infra/ztlog/internal/testutil/workloadtest"
)

var (
	td       = spiffeid.RequireTrustDomainFromString("test.ztlog.local")
	serverID = spiffeid.RequireFromPath(td, "/ztlog")
	agentID  = spiffeid.RequireFromPath(td, "/agent/a")
)

// fixture is a real HTTPS server whose handler reports the authenticated
// caller (or the error) as JSON.
type fixture struct {
	ca   *devca.CA
	src  identity.Source
	url  string
	auth *identity.Authenticator
}

func newFixture(t *testing.T, src identity.Source, ca *devca.CA) *fixture {
	t.Helper()
	auth, err := identity.NewAuthenticator(src, []string{serverID.String()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := auth.Authenticate(r)
		if err != nil {
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "no_identity": fmt.Sprint(errors.Is(err, identity.ErrNoIdentity))})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"id": c.ID.String(), "method": string(c.Method), "serial": c.Serial})
	})}
	go srv.Serve(tls.NewListener(ln, identity.ServerTLS(src)))
	t.Cleanup(func() { srv.Close() })
	return &fixture{ca: ca, src: src, url: "https://" + ln.Addr().String(), auth: auth}
}

func fileSource(t *testing.T, ca *devca.CA) identity.Source {
	t.Helper()
	dir := t.TempDir()
	svid, err := ca.IssueX509SVID(serverID, devca.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := devca.WriteSVID(filepath.Join(dir, "server"), svid); err != nil {
		t.Fatal(err)
	}
	bundle, err := ca.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bundle.json"), bundle, 0o644)
	src, err := identity.FromFiles(identity.Files{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key"), Bundle: filepath.Join(dir, "bundle.json")})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// client calls the fixture with an optional client SVID and bearer token.
func (f *fixture) call(t *testing.T, svid *x509svid.SVID, token string) (int, map[string]string, error) {
	t.Helper()
	var cfg *tls.Config
	if svid != nil {
		cfg = identity.ClientTLS(svid, f.src, serverID, td)
	} else {
		cfg = identity.ClientTLS(nil, f.src, serverID, td)
		cfg.GetClientCertificate = nil
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", f.url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

func TestMTLSAndJWTSVID(t *testing.T) {
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fileSource(t, ca), ca)
	agent, _ := ca.IssueX509SVID(agentID, devca.SVIDOptions{})

	code, out, err := f.call(t, agent, "")
	if err != nil || code != 200 || out["id"] != agentID.String() || out["method"] != "x509-svid" || out["serial"] != fmt.Sprintf("%x", agent.Certificates[0].SerialNumber) {
		t.Fatalf("mTLS: %d %v %v", code, out, err)
	}
	code, out, _ = f.call(t, nil, "")
	if code != 401 || out["no_identity"] != "true" {
		t.Fatalf("anonymous: %d %v", code, out)
	}
	tok, _ := ca.IssueJWTSVID(agentID, []string{serverID.String()}, time.Minute)
	code, out, _ = f.call(t, nil, tok)
	if code != 200 || out["id"] != agentID.String() || out["method"] != "jwt-svid" {
		t.Fatalf("JWT-SVID: %d %v", code, out)
	}
	// Certificate and token of the same ID: fine; of different IDs: refused.
	if code, _, _ = f.call(t, agent, tok); code != 200 {
		t.Fatalf("cert+token of one ID: %d", code)
	}
	other, _ := ca.IssueJWTSVID(spiffeid.RequireFromPath(td, "/agent/b"), []string{serverID.String()}, time.Minute)
	if code, out, _ = f.call(t, agent, other); code != 401 || !strings.Contains(out["error"], "bearer token is") {
		t.Fatalf("cert and token disagree: %d %v", code, out)
	}

	otherCA, _ := devca.New(td) // same trust domain name, different keys
	bad := map[string]string{}
	bad["wrong audience"], _ = ca.IssueJWTSVID(agentID, []string{"spiffe://test.ztlog.local/someone-else"}, time.Minute)
	bad["expired"], _ = ca.IssueJWTSVID(agentID, []string{serverID.String()}, -time.Minute)
	bad["foreign signer"], _ = otherCA.IssueJWTSVID(agentID, []string{serverID.String()}, time.Minute)
	bad["garbage"] = "not.a.jwt"
	for name, tok := range bad {
		code, out, _ := f.call(t, nil, tok)
		if code != 401 || out["no_identity"] != "false" {
			t.Errorf("%s token: %d %v", name, code, out)
		}
	}
	// A client certificate from another CA fails the handshake itself.
	foreign, _ := otherCA.IssueX509SVID(agentID, devca.SVIDOptions{})
	if _, _, err := f.call(t, foreign, ""); err == nil {
		t.Fatal("a client SVID from an untrusted CA got through the handshake")
	}
	// An expired client SVID: refused too.
	expired, _ := ca.IssueX509SVID(agentID, devca.SVIDOptions{NotBefore: time.Now().Add(-2 * time.Hour), TTL: time.Hour})
	if _, _, err := f.call(t, expired, ""); err == nil {
		t.Fatal("an expired client SVID got through the handshake")
	}
}

func TestAudienceIsRequired(t *testing.T) {
	ca, _ := devca.New(td)
	if _, err := identity.NewAuthenticator(fileSource(t, ca), nil); err == nil {
		t.Fatal("an authenticator without a JWT audience was built")
	}
	if _, err := identity.NewAuthenticator(fileSource(t, ca), []string{" "}); err == nil {
		t.Fatal("an authenticator with a blank JWT audience was built")
	}
}

func TestWorkloadAPISourceAndRotation(t *testing.T) {
	ca, _ := devca.New(td)
	first, _ := ca.IssueX509SVID(serverID, devca.SVIDOptions{})
	dir, err := os.MkdirTemp("", "wl") // short path: Unix socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	wl, err := workloadtest.Start(dir, first, ca.X509Bundle(), ca.JWTBundle())
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Stop()
	ctx := context.Background()
	src, err := identity.FromWorkloadAPI(ctx, wl.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.Check(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, src, ca)
	agent, _ := ca.IssueX509SVID(agentID, devca.SVIDOptions{})
	serverSerial := func() string {
		cfg := identity.ClientTLS(agent, src, serverID, td)
		conn, err := tls.Dial("tcp", strings.TrimPrefix(f.url, "https://"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber)
	}
	if got := serverSerial(); got != fmt.Sprintf("%x", first.Certificates[0].SerialNumber) {
		t.Fatalf("server presents %s, want the first SVID", got)
	}
	// JWT bundles came through the Workload API too.
	tok, _ := ca.IssueJWTSVID(agentID, []string{serverID.String()}, time.Minute)
	if code, out, _ := f.call(t, nil, tok); code != 200 {
		t.Fatalf("JWT-SVID via Workload API bundles: %d %v", code, out)
	}

	second, _ := ca.IssueX509SVID(serverID, devca.SVIDOptions{})
	wl.SetSVID(second)
	want := fmt.Sprintf("%x", second.Certificates[0].SerialNumber)
	deadline := time.Now().Add(5 * time.Second)
	for serverSerial() != want {
		if time.Now().After(deadline) {
			t.Fatal("the rotated SVID was not picked up without restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWorkloadAPIUnreachableIsBounded(t *testing.T) {
	dir, _ := os.MkdirTemp("", "wl")
	defer os.RemoveAll(dir)
	start := time.Now()
	_, err := identity.FromWorkloadAPI(context.Background(), "unix://"+filepath.Join(dir, "nobody.sock"), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s despite a 300ms deadline", time.Since(start))
	}
}

// A file source re-reads its files on Reload: a new server SVID is used
// from the next handshake; a broken file keeps the old material.
func TestFileSourceReload(t *testing.T) {
	ca, _ := devca.New(td)
	dir := t.TempDir()
	first, _ := ca.IssueX509SVID(serverID, devca.SVIDOptions{})
	devca.WriteSVID(filepath.Join(dir, "server"), first)
	b, _ := ca.Bundle().Marshal()
	os.WriteFile(filepath.Join(dir, "bundle.json"), b, 0o644)
	src, err := identity.FromFiles(identity.Files{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key"), Bundle: filepath.Join(dir, "bundle.json")})
	if err != nil {
		t.Fatal(err)
	}
	r := src.(interface{ Reload() error })
	second, _ := ca.IssueX509SVID(serverID, devca.SVIDOptions{})
	devca.WriteSVID(filepath.Join(dir, "server"), second)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	got, _ := src.GetX509SVID()
	if got.Certificates[0].SerialNumber.Cmp(second.Certificates[0].SerialNumber) != 0 {
		t.Fatal("Reload did not pick up the new SVID")
	}
	os.WriteFile(filepath.Join(dir, "server.pem"), []byte("garbage"), 0o644)
	if err := r.Reload(); err == nil {
		t.Fatal("a broken SVID file reloaded")
	}
	if got, _ := src.GetX509SVID(); got.Certificates[0].SerialNumber.Cmp(second.Certificates[0].SerialNumber) != 0 {
		t.Fatal("a failed reload replaced the SVID")
	}
}

// No TLS session is resumed: a resumed session skips the verification of
// the client's SVID against the bundle, so a client would keep its
// identity after its CA left the bundle. Each new connection does a full
// handshake, verified.
func TestNoSessionResumption(t *testing.T) {
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	src := fileSource(t, ca)
	f := newFixture(t, src, ca)
	svid, err := ca.IssueX509SVID(agentID, devca.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := identity.ClientTLS(svid, f.src, serverID, td)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	for i := range 3 {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(f.url, "https://"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 tickets arrive after the handshake: read to take them.
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		io.Copy(io.Discard, conn)
		resumed := conn.ConnectionState().DidResume
		conn.Close()
		if resumed {
			t.Fatalf("connection %d resumed a TLS session: its client SVID was not verified again", i+1)
		}
	}
}

// A JWT-SVID is refused from its expiry on: go-jose's minute of leeway
// does not let a token expired 30 s ago in.
func TestExpiredJWTSVIDRefusedAtOnce(t *testing.T) {
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fileSource(t, ca), ca)
	for _, c := range []struct {
		ttl  time.Duration
		code int
	}{{-30 * time.Second, 401}, {time.Minute, 200}} {
		tok, err := ca.IssueJWTSVID(agentID, []string{serverID.String()}, c.ttl)
		if err != nil {
			t.Fatal(err)
		}
		code, out, err := f.call(t, nil, tok)
		if err != nil || code != c.code {
			t.Errorf("JWT-SVID with ttl %s: %d %v %v, want %d", c.ttl, code, out, err, c.code)
		}
	}
}
