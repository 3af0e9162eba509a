package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/devca"
)

// decideAgainst runs zt decide for aws.ec2.terminate_instances on i-1
// against a server that answers body, and returns the exit status and
// stderr. scheme "https" serves real mTLS with a dev CA's server SVID.
func decideAgainst(t *testing.T, scheme, body string) (int, string) {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("decide.ztlog.local")
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, _ := ca.Bundle().Marshal()
	bundle := filepath.Join(dir, "bundle.pem")
	os.WriteFile(bundle, b, 0o644)
	for _, who := range []string{"agent", "server"} {
		svid, err := ca.IssueX509SVID(spiffeid.RequireFromPath(td, "/"+who), devca.SVIDOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := devca.WriteSVID(filepath.Join(dir, who), svid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if scheme == "https" {
		src, err := identity.FromFiles(identity.Files{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key"), Bundle: bundle})
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, identity.ServerTLS(src))
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var out, errb bytes.Buffer
	code := runDecide([]string{"--server", scheme + "://" + ln.Addr().String(), "--svid", filepath.Join(dir, "agent"), "--bundle", bundle,
		"--action", "aws.ec2.terminate_instances", "--resource", "i-1"}, &out, &errb)
	return code, errb.String()
}

// zt decide refuses a plain-HTTP server (nothing would authenticate the
// answer), and over mTLS it refuses an answer about another action or
// resource: an allow exits 0 only for the action asked.
func TestDecideTrustsOnlyAnAuthenticatedAnswerAboutTheAction(t *testing.T) {
	allowOther := `{"decision":"allow","action":"something.else","resource":"i-1","reasons":[],"log":{"index":1,"leaf_hash":"x"}}`
	allowThis := `{"decision":"allow","action":"aws.ec2.terminate_instances","resource":"i-1","reasons":[],"log":{"index":1,"leaf_hash":"x"}}`
	if code, stderr := decideAgainst(t, "http", allowThis); code != exitUsage || !strings.Contains(stderr, "https://") {
		t.Errorf("plain HTTP server: exit %d (%s), want %d naming https://", code, stderr, exitUsage)
	}
	if code, stderr := decideAgainst(t, "https", allowOther); code != exitNoDecision || !strings.Contains(stderr, "something.else") {
		t.Errorf("an allow about another action: exit %d (%s), want %d", code, stderr, exitNoDecision)
	}
	if code, stderr := decideAgainst(t, "https", allowThis); code != exitAllow {
		t.Errorf("an allow about the action asked: exit %d (%s), want %d", code, stderr, exitAllow)
	}
}
