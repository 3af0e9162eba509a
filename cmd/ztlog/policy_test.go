package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// startDev runs `ztlog dev` and returns its address once ready.
func startDev(t *testing.T, dir string, args ...string) (*exec.Cmd, string, *devproc.SyncBuffer) {
	t.Helper()
	d := devproc.Start(t, ztlogBin, dir, append([]string{"--decision-timeout", "15s"}, args...)...)
	waitReady(t, "http://"+d.Addr)
	return d.Cmd, d.Addr, d.Stderr
}

func decide(t *testing.T, addr, dir, action string, extra ...string) api.ActionResponse {
	t.Helper()
	cmd := exec.Command(ztBin, append([]string{"decide", "--server", "https://" + addr, "--svid", filepath.Join(dir, "dev", "agent"), "--action", action, "--resource", "r", "--json"}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	var ar api.ActionResponse
	if err := json.Unmarshal(out, &ar); err != nil || ar.Decision == "" {
		t.Fatalf("zt decide %s: exit %d: %s %s", action, cmd.ProcessState.ExitCode(), out, stderr.String())
	}
	return ar
}

func policyStatus(t *testing.T, addr string) pdp.Status {
	var st pdp.Status
	getJSON(t, "http://"+addr+"/v1/policy", &st)
	return st
}

// policyEntries returns the policy entries in the log's first n entries.
func policyEntries(t *testing.T, addr string, n uint64) []*entry.Policy {
	var out []*entry.Policy
	for i := uint64(0); i < n; i++ {
		var e struct {
			Leaf []byte `json:"leaf"`
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://%s/v1/entries/%d", addr, i))
			if err == nil && resp.StatusCode == 200 {
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				break
			}
			if resp != nil {
				resp.Body.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("entry %d never published", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
		ent, err := entry.Parse(e.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := ent.(*entry.Policy); ok {
			out = append(out, p)
		}
	}
	return out
}

// TestPolicyVersionsAreEvidence: a policy edit is committed as a policy
// entry and new decisions carry the new hash; a broken edit keeps the old
// policy and says why in /v1/policy and /readyz; SIGHUP reloads.
func TestPolicyVersionsAreEvidence(t *testing.T) {
	dir := t.TempDir()
	p, addr, _ := startDev(t, dir)
	st0 := policyStatus(t, addr)
	if st0.Engine != "opa" || st0.LoadedBy != "startup" {
		t.Fatalf("/v1/policy at start: %+v", st0)
	}
	d0 := decide(t, addr, dir, "demo.echo")
	if d0.Decision != "allow" || d0.Policy.Hash != st0.Hash {
		t.Fatalf("first decision %+v, policy %s", d0, st0.Hash)
	}
	// Edit: demo.* is no longer allowed for dev agents.
	rego := filepath.Join(dir, "dev", "policy", "opa", "data.json")
	b, _ := os.ReadFile(rego)
	os.WriteFile(rego, bytes.Replace(b, []byte(`"demo.*"`), []byte(`"demo.echo.only"`), 1), 0o644)
	st1 := waitPolicy(t, addr, func(s pdp.Status) bool { return s.Hash != st0.Hash })
	if st1.LoadedBy != "file-change" {
		t.Fatalf("after the edit: %+v", st1)
	}
	d1 := decide(t, addr, dir, "demo.echo")
	if d1.Decision != "deny" || d1.Policy.Hash != st1.Hash {
		t.Fatalf("decision after the edit: %+v", d1)
	}
	entries := policyEntries(t, addr, d1.Log.Index+1)
	if len(entries) != 2 || entries[0].Hash != st0.Hash || entries[0].LoadedBy != "startup" || entries[1].Hash != st1.Hash || entries[1].LoadedBy != "file-change" {
		t.Fatalf("policy entries: %+v", entries)
	}
	if entries[1].SourceDigest != st1.SourceDigest {
		t.Fatal("the policy entry's source digest is not the version's")
	}
	// A broken edit keeps the policy in force and says why.
	rf := filepath.Join(dir, "dev", "policy", "opa", "authz.rego")
	good, _ := os.ReadFile(rf)
	os.WriteFile(rf, append(good, []byte("\nallow if {")...), 0o644)
	st2 := waitPolicy(t, addr, func(s pdp.Status) bool { return s.ReloadError != "" })
	if st2.Hash != st1.Hash {
		t.Fatalf("a broken edit changed the policy in force: %+v", st2)
	}
	var ready struct {
		Details map[string]pdp.Status `json:"details"`
	}
	getJSON(t, "http://"+addr+"/readyz", &ready)
	if ready.Details["policy"].ReloadError == "" {
		t.Fatalf("/readyz does not say why the reload failed: %+v", ready)
	}
	if d := decide(t, addr, dir, "demo.echo"); d.Policy.Hash != st1.Hash {
		t.Fatalf("decision under a broken edit carries %s", d.Policy.Hash)
	}
	// Repair, and reload with SIGHUP.
	os.WriteFile(rf, good, 0o644)
	os.WriteFile(rego, b, 0o644)
	p.Process.Signal(syscall.SIGHUP)
	st3 := waitPolicy(t, addr, func(s pdp.Status) bool { return s.Hash == st0.Hash && s.ReloadError == "" })
	if st3.LoadedBy != "sighup" && st3.LoadedBy != "file-change" {
		t.Fatalf("after repair: %+v", st3)
	}
	if d := decide(t, addr, dir, "demo.echo"); d.Decision != "allow" || d.Policy.Hash != st0.Hash {
		t.Fatalf("after repair: %+v", d)
	}
}

func waitPolicy(t *testing.T, addr string, ok func(pdp.Status) bool) pdp.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := policyStatus(t, addr)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy status never changed: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Switching engine is a configuration change.
func TestCedarEngineByConfiguration(t *testing.T) {
	dir := t.TempDir()
	_, addr, _ := startDev(t, dir, "--policy-engine", "cedar")
	if st := policyStatus(t, addr); st.Engine != "cedar" || !strings.HasSuffix(st.Source, filepath.Join("policy", "cedar")) {
		t.Fatalf("/v1/policy: %+v", st)
	}
	allow := decide(t, addr, dir, "demo.echo")
	deny := decide(t, addr, dir, "aws.ec2.terminate_instances")
	if allow.Decision != "allow" || allow.Policy.Engine != "cedar" || deny.Decision != "deny" || deny.Reasons[0].Code != "action.forbidden" {
		t.Fatalf("cedar decisions: %+v / %+v", allow, deny)
	}
	// A delegated user with the search.deep scope (ztlog dev's user.jwt).
	if d := decide(t, addr, dir, "search.deep"); d.Decision != "deny" {
		t.Fatalf("search.deep without a user: %+v", d)
	}
	d := decide(t, addr, dir, "search.deep", "--user-token", filepath.Join(dir, "dev", "user.jwt"))
	if d.Decision != "allow" || d.User == nil || d.User.Subject != "alice" {
		t.Fatalf("search.deep for alice: %+v", d)
	}
	// Guardrails: a cloud access key in the arguments is a committed deny.
	d = decide(t, addr, dir, "demo.echo", "--args", `{"cmd":"export AWS_ACCESS_KEY_ID=AKIAZ7QW3RTY5UIOP2LK"}`)
	if d.Decision != "deny" || d.Reasons[0].Code != "guardrail.finding" || len(d.Findings) != 1 || d.Findings[0].Type != "cloud_access_key" || d.Findings[0].Arg != "cmd" {
		t.Fatalf("guardrail: %+v", d)
	}
}

// The user token issuer rotates its keys: SIGHUP re-reads --user-jwks, a
// token of a key no longer published is a committed deny, and a JWKS that
// does not parse keeps the keys in use.
func TestUserJWKSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	p, addr, _ := startDev(t, dir)
	userJWT := filepath.Join(dir, "dev", "user.jwt")
	jwksFile := filepath.Join(dir, "dev", "user-issuer.jwks")
	if d := decide(t, addr, dir, "search.deep", "--user-token", userJWT); d.Decision != "allow" {
		t.Fatalf("alice before rotation: %+v", d)
	}
	published, err := os.ReadFile(jwksFile)
	if err != nil {
		t.Fatal(err)
	}
	// A broken JWKS: refused, the published key stays in use.
	os.WriteFile(jwksFile, []byte("{not json"), 0o644)
	p.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if d := decide(t, addr, dir, "search.deep", "--user-token", userJWT); d.Decision != "allow" {
		t.Fatalf("a broken JWKS replaced the keys in use: %+v", d)
	}
	// Rotation to a new key: alice's token, signed by the old one, is denied.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	next, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "rotated", Algorithm: "ES256", Use: "sig"}}})
	os.WriteFile(jwksFile, next, 0o644)
	p.Process.Signal(syscall.SIGHUP)
	d := waitDecision(t, addr, dir, "deny", "search.deep", "--user-token", userJWT)
	if d.Reasons[0].Code != "user.invalid" {
		t.Fatalf("token of a rotated-out key: %+v", d)
	}
	// Back to the published key.
	os.WriteFile(jwksFile, published, 0o644)
	p.Process.Signal(syscall.SIGHUP)
	waitDecision(t, addr, dir, "allow", "search.deep", "--user-token", userJWT)
}

// waitDecision decides until the decision is want (a reload is asynchronous).
func waitDecision(t *testing.T, addr, dir, want, action string, extra ...string) api.ActionResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := decide(t, addr, dir, action, extra...)
		if d.Decision == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %s: %+v", action, want, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
