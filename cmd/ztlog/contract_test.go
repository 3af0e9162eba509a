package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/devca"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// TestDevDecisionsEndToEnd runs `ztlog dev`, then `zt decide` (allow and
// deny) and the JS SDK's request shape (allow and deny), and proves each
// decision is in the log with a tlog-tiles client that has only the URL and
// the verifier key.
func TestDevDecisionsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	d := devproc.Start(t, ztlogBin, dir, "--decision-timeout", "15s")
	addr := d.Addr
	var vkey string
	for _, line := range d.Banner {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "verifier key  "); ok {
			vkey = v
		}
	}
	if vkey == "" {
		t.Fatalf("no verifier key in the banner; stderr:\n%s", d.Stderr.String())
	}
	waitReady(t, "http://"+addr)
	devDir := filepath.Join(dir, "dev")
	for _, f := range []string{"bundle.pem", "server.pem", "server.key", "agent.pem", "agent.key", "broker.pem", "broker.key", "admin.pem", "admin.key", "agent.jwt", "policy/opa/authz.rego"} {
		if _, err := os.Stat(filepath.Join(devDir, f)); err != nil {
			t.Errorf("dev did not write %s: %v", f, err)
		}
	}

	type committed struct {
		index    uint64
		leafHash string
		effect   string
	}
	var decisions []committed
	// zt decide: allow (exit 0) and deny (exit 1).
	for _, tc := range []struct {
		action string
		exit   int
	}{{"demo.echo", 0}, {"aws.ec2.terminate_instances", 1}} {
		cmd := exec.Command(ztBin, "decide", "--server", "https://"+addr, "--svid", filepath.Join(devDir, "agent"),
			"--action", tc.action, "--resource", "i-demo", "--json")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		if cmd.ProcessState.ExitCode() != tc.exit {
			t.Fatalf("zt decide %s: exit %d\n%s%s", tc.action, cmd.ProcessState.ExitCode(), o.String(), e.String())
		}
		var ar api.ActionResponse
		if err := json.Unmarshal(o.Bytes(), &ar); err != nil {
			t.Fatalf("zt decide --json: %v\n%s", err, o.String())
		}
		decisions = append(decisions, committed{ar.Log.Index, ar.Log.LeafHash, ar.Decision})
		if tc.exit == 0 {
			var wk struct {
				JWKS jose.JSONWebKeySet `json:"receipt_jwks"`
			}
			getJSON(t, "http://"+addr+"/.well-known/ztlog", &wk)
			if _, err := receipt.Verify(ar.Receipt, &wk.JWKS, receipt.Expect{Issuer: devOrigin, Audience: devBrokerID.String(), ActionDigest: ar.ActionDigest, Now: time.Now()}); err != nil {
				t.Fatalf("zt decide receipt: %v", err)
			}
		}
	}
	// Human output of zt decide.
	human, _ := exec.Command(ztBin, "decide", "--server", "https://"+addr, "--svid", filepath.Join(devDir, "agent"), "--action", "demo.echo", "--resource", "x").Output()
	if !strings.HasPrefix(string(human), "ALLOW  demo.echo on x") || !strings.Contains(string(human), "log index") || !strings.Contains(string(human), "receipt") {
		t.Fatalf("zt decide output:\n%s", human)
	}
	// The JS SDK's request: bearer JWT-SVID, {actor, action, resource}.
	jwt, _ := os.ReadFile(filepath.Join(devDir, "agent.jwt"))
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(devDir, "bundle.pem"))
	pool.AppendCertsFromPEM(caPEM)
	js := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}} // plain TLS, as Node's fetch
	for _, tc := range []struct {
		action string
		status int
	}{{"demo.echo", 200}, {"aws.ec2.terminate_instances", 403}} {
		req, _ := http.NewRequest("POST", "https://"+addr+"/actions", strings.NewReader(`{"actor":"`+devAgentID.String()+`","action":"`+tc.action+`","resource":"i-demo"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(jwt)))
		resp, err := js.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var lr api.LegacyActionResponse
		json.NewDecoder(resp.Body).Decode(&lr)
		resp.Body.Close()
		if resp.StatusCode != tc.status || lr.OK != (tc.status == 200) {
			t.Fatalf("/actions %s: %d %+v", tc.action, resp.StatusCode, lr)
		}
		decisions = append(decisions, committed{lr.Audit.Index, lr.Audit.LeafHash, lr.Decision})
	}

	// A tlog-tiles client with only the URL and the verifier key.
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := client.NewHTTPFetcher(mustURL("http://"+addr+"/log/"), nil)
	var cp *log.Checkpoint
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, _, _, err = client.FetchCheckpoint(t.Context(), f.ReadCheckpoint, v, devOrigin)
		if err == nil && cp.Size > decisions[len(decisions)-1].index {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering the decisions: %v %v", cp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pb, err := client.NewProofBuilder(t.Context(), cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range decisions {
		bundle, err := client.GetEntryBundle(t.Context(), f.ReadEntryBundle, d.index/256, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		leaf := bundle.Entries[d.index%256]
		lh := rfc6962.DefaultHasher.HashLeaf(leaf)
		if base64.StdEncoding.EncodeToString(lh) != d.leafHash {
			t.Fatalf("entry %d does not have the answered leaf hash", d.index)
		}
		e, err := entry.Parse(leaf)
		if err != nil || string(e.(*entry.Decision).Effect) != d.effect {
			t.Fatalf("entry %d: %v %v", d.index, e, err)
		}
		p, err := pb.InclusionProof(t.Context(), d.index)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, d.index, cp.Size, lh, p, cp.Hash); err != nil {
			t.Fatalf("inclusion of %d: %v", d.index, err)
		}
	}
	if n := len(decisions); n != 4 {
		t.Fatalf("%d decisions", n)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestDevPolicyIsTheExample keeps the embedded dev policy identical to
// testdata/policies/opa.
func TestDevPolicyIsTheExample(t *testing.T) {
	for _, engine := range []string{"opa", "cedar"} {
		entries, _ := devPolicy.ReadDir("devpolicy/" + engine)
		want, _ := os.ReadDir("../../testdata/policies/" + engine)
		if len(entries) == 0 || len(entries) != len(want) {
			t.Fatalf("embedded dev policy %s has %d files, testdata %d", engine, len(entries), len(want))
		}
		for _, e := range entries {
			a, _ := devPolicy.ReadFile("devpolicy/" + engine + "/" + e.Name())
			b, err := os.ReadFile(filepath.Join("../../testdata/policies", engine, e.Name()))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("cmd/ztlog/devpolicy/%s/%s differs from testdata/policies (copy it over): %v", engine, e.Name(), err)
			}
		}
	}
}

// servedDecision is one answered allow as the crash test records it.
type servedDecision struct {
	index    uint64
	leafHash string
	receipt  string
}

// TestDecisionCrashDurability kills `ztlog serve` with SIGKILL while
// decisions are in flight, twice, restarts it on the same data, and proves
// every allow ever answered is in the log: same index, same leaf hash, an
// allow whose receipt id is the answered receipt's.
func TestDecisionCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real processes; skipped with -short")
	}
	dir := t.TempDir()
	td := spiffeid.RequireTrustDomainFromString("crash.ztlog.local")
	serverID := spiffeid.RequireFromPath(td, "/ztlog")
	agentID := spiffeid.RequireFromPath(td, "/agent/a")
	adminID := spiffeid.RequireFromPath(td, "/admin")
	ca, _ := devca.New(td)
	svid, _ := ca.IssueX509SVID(serverID, devca.SVIDOptions{DNSNames: []string{"localhost"}})
	devca.WriteSVID(filepath.Join(dir, "server"), svid)
	bundle, _ := ca.Bundle().Marshal()
	os.WriteFile(filepath.Join(dir, "bundle.json"), bundle, 0o644)
	keyFile := filepath.Join(dir, "log.key")
	if err := exec.Command(ztlogBin, "keygen", "--origin", "crash.example/log", "--out", keyFile).Run(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(ztlogBin, "receipt-keygen", "--out", filepath.Join(dir, "receipt.jwk")).Run(); err != nil {
		t.Fatal(err)
	}
	policyDir := filepath.Join(dir, "policy")
	os.MkdirAll(policyDir, 0o755)
	os.WriteFile(filepath.Join(policyDir, "p.rego"), []byte("package ztlog.authz\nimport rego.v1\ndefault allow := false\nallow if input.actor.status == \"registered\"\n"), 0o644)
	src, err := identity.FromFiles(identity.Files{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key"), Bundle: filepath.Join(dir, "bundle.json")})
	if err != nil {
		t.Fatal(err)
	}
	clientFor := func(id spiffeid.ID) *http.Client {
		s, _ := ca.IssueX509SVID(id, devca.SVIDOptions{})
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: identity.ClientTLS(s, src, serverID, td), MaxIdleConnsPerHost: 32}}
	}
	data := filepath.Join(dir, "data")
	var answered []servedDecision
	for round := range 3 {
		addr := devproc.FreeAddr(t)
		p := start(t, "serve", "--key", keyFile, "--data-dir", data, "--listen", addr, "--checkpoint-interval", "100ms",
			"--svid-cert", filepath.Join(dir, "server.pem"), "--svid-key", filepath.Join(dir, "server.key"), "--bundle", filepath.Join(dir, "bundle.json"),
			"--admin", adminID.String(), "--policy", policyDir, "--receipt-key", filepath.Join(dir, "receipt.jwk"),
			"--default-broker", "spiffe://crash.ztlog.local/broker/b")
		waitReady(t, "http://"+addr)
		base := "https://" + addr
		if round == 0 {
			resp, err := clientFor(adminID).Post(base+"/v1/agents", "application/json", strings.NewReader(`{"op":"register","id":"`+agentID.String()+`"}`))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("register: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		if round == 2 {
			// The last round only checks, on a clean restart.
			verifyAnswered(t, base, clientFor(agentID), answered)
			break
		}
		agent := clientFor(agentID)
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		count := 0
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := agent.Post(base+"/v1/actions", "application/json", strings.NewReader(fmt.Sprintf(`{"action":"demo.echo","resource":"r-%d-%d-%d"}`, round, g, i)))
					if err != nil {
						return // the server died
					}
					var ar api.ActionResponse
					derr := json.NewDecoder(resp.Body).Decode(&ar)
					resp.Body.Close()
					if resp.StatusCode == 200 && derr == nil {
						mu.Lock()
						answered = append(answered, servedDecision{ar.Log.Index, ar.Log.LeafHash, ar.Receipt})
						count++
						mu.Unlock()
					}
				}
			}()
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := count
			mu.Unlock()
			if n >= 300 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.cmd.Wait()
		close(stop)
		wg.Wait()
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: serve did not die by SIGKILL", round)
		}
		t.Logf("round %d: %d allows answered before SIGKILL", round, count)
		if count == 0 {
			t.Fatalf("round %d: no allow answered; stderr:\n%s", round, p.stderr)
		}
	}
}

// verifyAnswered checks every answered allow against the restarted log.
func verifyAnswered(t *testing.T, base string, c *http.Client, answered []servedDecision) {
	t.Helper()
	plain := strings.Replace(base, "https://", "http://", 1)
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range answered {
		var got struct {
			Leaf     []byte `json:"leaf"`
			LeafHash string `json:"leaf_hash"`
		}
		for {
			resp, err := http.Get(fmt.Sprintf("%s/v1/entries/%d", plain, a.index))
			if err == nil && resp.StatusCode == 200 {
				json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				break
			}
			if resp != nil {
				resp.Body.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("answered allow at index %d is not in the restarted log", a.index)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(got.Leaf)); got != a.leafHash {
			t.Fatalf("index %d holds another entry than the answered allow", a.index)
		}
		e, err := entry.Parse(got.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		d := e.(*entry.Decision)
		r, err := receipt.Parse(a.receipt)
		if err != nil {
			t.Fatal(err)
		}
		if d.Effect != entry.Allow || d.Receipt == nil || d.Receipt.ID != r.Claims.ID || r.Claims.LogIndex != a.index {
			t.Fatalf("index %d: %+v does not match the answered receipt %+v", a.index, d, r.Claims)
		}
	}
	t.Logf("%d answered allows verified: each in the log with its leaf hash, its receipt naming that entry", len(answered))
}
