package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/devca"
)

const (
	decideTD     = "decide.ztlog.local"
	decideOrigin = "decide.ztlog.local/log"
	decideBroker = "spiffe://decide.ztlog.local/broker"
	decideAction = "aws.ec2.terminate_instances"
)

// answer shapes the fake service's answer to a decision request.
type answer struct {
	decision string
	action   string       // default: the action asked
	signer   *receipt.Key // signs the receipt of an allow (nil: the published key)
	noBroker bool         // zt decide names no --broker: the service picks decideBroker
}

// decideAgainst runs zt decide for aws.ec2.terminate_instances on i-1
// against a fake decision service that answers as a says (with the real
// action digest, correlation id and, for an allow, a receipt), and
// returns the exit status, stdout and stderr. scheme "https" serves real
// mTLS with a dev CA's server SVID; the service publishes its receipt key
// at /v1/receipts/jwks.json and its origin at /.well-known/ztlog.
func decideAgainst(t *testing.T, scheme string, a answer) (int, string, string) {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString(decideTD)
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
	published, err := receipt.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	if a.signer == nil {
		a.signer = published
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ztlog", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"origin": decideOrigin, "default_broker": decideBroker})
	})
	mux.HandleFunc("GET /v1/receipts/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{published.Public()}})
	})
	mux.HandleFunc("POST /v1/actions", func(w http.ResponseWriter, r *http.Request) {
		var req api.ActionRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		body, status := a.respond(t, &req, spiffeid.RequireFromPath(td, "/agent").String())
		w.WriteHeader(status)
		w.Write(body)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var out, errb bytes.Buffer
	args := []string{"--server", scheme + "://" + ln.Addr().String(), "--svid", filepath.Join(dir, "agent"), "--bundle", bundle,
		"--action", decideAction, "--resource", "i-1"}
	if !a.noBroker {
		args = append(args, "--broker", decideBroker)
	}
	code := runDecide(args, &out, &errb)
	return code, out.String(), errb.String()
}

// respond builds the answer to req from actor as a real service would.
func (a answer) respond(t *testing.T, req *api.ActionRequest, actor string) ([]byte, int) {
	if req.Broker == "" {
		req.Broker = decideBroker // the service's default broker
	}
	digest, err := entry.ActionDigest(entry.Action{Actor: actor, Action: req.Action, Resource: req.Resource, ArgsDigest: req.ArgsDigest, Broker: req.Broker})
	if err != nil {
		t.Error(err)
	}
	leaf := sha256.Sum256([]byte("leaf"))
	ar := api.ActionResponse{Decision: a.decision, Reasons: []api.Reason{}, Actor: actor, Action: req.Action, Resource: req.Resource,
		ActionDigest: digest, CorrelationID: req.CorrelationID,
		Log: api.LogRef{Origin: decideOrigin, Index: 7, LeafHash: base64.StdEncoding.EncodeToString(leaf[:])}}
	if a.action != "" {
		ar.Action = a.action
	}
	status := http.StatusForbidden
	if a.decision == "allow" {
		status = http.StatusOK
		now := time.Now()
		tok, err := a.signer.Sign(receipt.Claims{Version: receipt.Version, Issuer: decideOrigin, Subject: actor, Audience: req.Broker,
			IssuedAt: now.Unix(), Expiry: now.Add(time.Minute).Unix(), ID: "r-1", ActionDigest: digest, Decision: "allow",
			LogIndex: ar.Log.Index, LeafHash: ar.Log.LeafHash, PolicyHash: "sha256:" + strings.Repeat("0", 64), CorrelationID: req.CorrelationID})
		if err != nil {
			t.Error(err)
		}
		ar.Receipt = tok
	}
	b, _ := json.Marshal(&ar)
	return b, status
}

// zt decide refuses a plain-HTTP server: nothing would authenticate the answer.
func TestDecideRefusesPlainHTTP(t *testing.T) {
	code, _, stderr := decideAgainst(t, "http", answer{decision: "allow"})
	if code != exitUsage {
		t.Errorf("plain HTTP server: exit %d (%s), want %d", code, stderr, exitUsage)
	}
	if !strings.Contains(stderr, "https://") {
		t.Errorf("plain HTTP server: stderr %q does not name https://", stderr)
	}
}

// Over mTLS, an allow about another action is no decision, and the error
// names the action the answer was about.
func TestDecideRefusesAnAnswerAboutAnotherAction(t *testing.T) {
	code, _, stderr := decideAgainst(t, "https", answer{decision: "allow", action: "something.else"})
	if code != exitNoDecision {
		t.Errorf("an allow about another action: exit %d (%s), want %d", code, stderr, exitNoDecision)
	}
	if !strings.Contains(stderr, "something.else") {
		t.Errorf("stderr %q does not name the action of the answer", stderr)
	}
}

// A verified allow exits 0 and prints the decision; a deny exits 1.
func TestDecideAllowAndDeny(t *testing.T) {
	code, stdout, stderr := decideAgainst(t, "https", answer{decision: "allow"})
	if code != exitAllow {
		t.Fatalf("a signed allow about the action asked: exit %d (%s), want %d", code, stderr, exitAllow)
	}
	if !strings.HasPrefix(stdout, "ALLOW  "+decideAction+" on i-1\n") {
		t.Errorf("stdout %q does not start with the decision line", stdout)
	}
	if !strings.Contains(stdout, "  log index     7 ("+decideOrigin+")\n") {
		t.Errorf("stdout %q does not give the log index", stdout)
	}
	if code, _, stderr := decideAgainst(t, "https", answer{decision: "deny"}); code != exitDeny {
		t.Errorf("a deny: exit %d (%s), want %d", code, stderr, exitDeny)
	}
}

// An allow whose receipt does not verify against the service's JWKS (signed
// by a key the service does not publish) is no decision: exit 3, never 0.
func TestDecideReceiptNotInJWKSIsNoDecision(t *testing.T) {
	other, err := receipt.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := decideAgainst(t, "https", answer{decision: "allow", signer: other})
	if code != exitNoDecision {
		t.Fatalf("an allow with a receipt not signed by a JWKS key: exit %d (%s), want %d", code, stderr, exitNoDecision)
	}
	if !strings.Contains(stderr, "receipt") {
		t.Errorf("stderr %q does not say the receipt failed", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q: nothing is printed for no decision", stdout)
	}
}

// Without --broker the SDK names the service's default broker (from
// /.well-known/ztlog), so the action digest it checks is the one committed.
func TestDecideWithTheServicesDefaultBroker(t *testing.T) {
	if code, _, stderr := decideAgainst(t, "https", answer{decision: "allow", noBroker: true}); code != exitAllow {
		t.Errorf("an allow for the default broker: exit %d (%s), want %d", code, stderr, exitAllow)
	}
	if code, _, stderr := decideAgainst(t, "https", answer{decision: "deny", noBroker: true}); code != exitDeny {
		t.Errorf("a deny without a broker: exit %d (%s), want %d", code, stderr, exitDeny)
	}
}

// A library error naming no flag is mapped to the flag here.
func TestWorkloadAPIErrorNamesTheFlag(t *testing.T) {
	err := workloadAPIError(fmt.Errorf("opening: %w", identity.ErrNoWorkloadAPI))
	if !strings.Contains(err.Error(), "--workload-api env") {
		t.Errorf("%q does not name --workload-api", err)
	}
	if !errors.Is(err, identity.ErrNoWorkloadAPI) {
		t.Error("the mapped error does not wrap identity.ErrNoWorkloadAPI")
	}
}
