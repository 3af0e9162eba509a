package gate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/httperr"
	ztlog "github.com/zt-infra/ztlog/log"
)

// committed checks that the decision answered is the entry at its index,
// byte for byte by leaf hash, and returns the parsed entry.
func (s *server) committed(index uint64, leafHash string) *entry.Decision {
	s.t.Helper()
	leaf := s.entry(index)
	if got := base64.StdEncoding.EncodeToString(ztlog.LeafHash(leaf)); got != leafHash {
		s.t.Fatalf("entry %d has leaf hash %s, the answer said %s", index, got, leafHash)
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		s.t.Fatalf("entry %d: %v", index, err)
	}
	d, ok := e.(*entry.Decision)
	if !ok {
		s.t.Fatalf("entry %d is a %T", index, e)
	}
	return d
}

func (s *server) verifyInclusion(index uint64, leaf []byte, cpNote string) {
	s.t.Helper()
	cp, _, _, err := flog.ParseCheckpoint([]byte(cpNote), origin, s.key.Verifier)
	if err != nil {
		s.t.Fatalf("checkpoint does not verify: %v", err)
	}
	p, err := s.svc.Log().InclusionProof(context.Background(), index, cp.Size)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, ztlog.LeafHash(leaf), p, cp.Hash); err != nil {
		s.t.Fatalf("inclusion of %d: %v", index, err)
	}
}

func TestAllowAndDenyAreCommittedWithReceipts(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"owner":"team-demo","brokers":["`+brokerID.String()+`"]`)
	agent := s.mtls(agentID)

	// Allow over mTLS.
	r := agent.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"demo://hello","args_digest":"sha256:`+strings.Repeat("ab", 32)+`","broker":"`+brokerID.String()+`"}`,
		"X-Correlation-ID", "test-corr-1")
	if r.status != 200 {
		t.Fatalf("allow: %d %s", r.status, r.body)
	}
	var allow api.ActionResponse
	r.json(t, &allow)
	if allow.Decision != "allow" || allow.CorrelationID != "test-corr-1" || r.header.Get("X-Correlation-ID") != "test-corr-1" || allow.Receipt == "" {
		t.Fatalf("allow response: %+v", allow)
	}
	d := s.committed(allow.Log.Index, allow.Log.LeafHash)
	if d.Effect != entry.Allow || d.Actor != agentID.String() || d.CorrelationID != "test-corr-1" || d.Authn.Method != "x509-svid" || d.Authn.Serial == "" || d.Receipt == nil {
		t.Fatalf("committed allow: %+v", d)
	}
	wantDigest, _ := entry.ActionDigest(entry.Action{Actor: agentID.String(), Action: "demo.echo", Resource: "demo://hello", ArgsDigest: "sha256:" + strings.Repeat("ab", 32), Broker: brokerID.String()})
	if d.ActionDigest != wantDigest || allow.ActionDigest != wantDigest {
		t.Fatalf("action digest %s / %s, want %s", d.ActionDigest, allow.ActionDigest, wantDigest)
	}
	// The receipt verifies against the published JWKS and binds the entry.
	c, err := receipt.Verify(allow.Receipt, s.jwks(), receipt.Expect{Issuer: origin, Audience: brokerID.String(), ActionDigest: wantDigest, Now: time.Now()})
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if c.LogIndex != allow.Log.Index || c.LeafHash != allow.Log.LeafHash || c.ID != d.Receipt.ID || c.Subject != agentID.String() || c.PolicyHash != d.Policy.Hash {
		t.Fatalf("receipt claims %+v do not bind entry %+v", c, d)
	}
	// Another broker cannot use it.
	if _, err := receipt.Verify(allow.Receipt, s.jwks(), receipt.Expect{Issuer: origin, Audience: "spiffe://dev.ztlog.local/broker/other", Now: time.Now()}); err == nil {
		t.Fatal("receipt verified for another broker")
	}

	// Deny: committed before the answer, no receipt.
	r = agent.do("POST", "/v1/actions", `{"action":"aws.ec2.terminate_instances","resource":"i-demo"}`)
	var deny api.ActionResponse
	r.json(t, &deny)
	if r.status != 403 || deny.Decision != "deny" || deny.Receipt != "" || deny.Reasons[0].Code != "action.forbidden" {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	if d := s.committed(deny.Log.Index, deny.Log.LeafHash); d.Effect != entry.Deny || d.Reasons[0].Code != "action.forbidden" || d.Receipt != nil {
		t.Fatalf("committed deny: %+v", d)
	}

	// The JS SDK's shape, bearer JWT-SVID: allow and deny, with evidence.
	js := s.bearer(agentID)
	for _, tc := range []struct {
		action string
		status int
	}{{"demo.echo", 200}, {"aws.ec2.terminate_instances", 403}} {
		r := js.do("POST", "/actions", `{"actor":"`+agentID.String()+`","action":"`+tc.action+`","resource":"i-demo"}`)
		var lr api.LegacyActionResponse
		r.json(t, &lr)
		if r.status != tc.status || lr.OK != (tc.status == 200) || lr.Decision != map[int]string{200: "allow", 403: "deny"}[tc.status] || lr.Reason == "" {
			t.Fatalf("/actions %s: %d %s", tc.action, r.status, r.body)
		}
		if lr.Audit.Checkpoint == "" {
			t.Fatalf("/actions %s: no checkpoint in audit: %s", tc.action, r.body)
		}
		d := s.committed(lr.Audit.Index, lr.Audit.LeafHash)
		if d.Authn.Method != "jwt-svid" || string(d.Effect) != lr.Decision {
			t.Fatalf("/actions committed %+v", d)
		}
		s.verifyInclusion(lr.Audit.Index, s.entry(lr.Audit.Index), lr.Audit.Checkpoint)
		if tc.status == 200 {
			if _, err := receipt.Verify(lr.Audit.Receipt, s.jwks(), receipt.Expect{Issuer: origin, Audience: brokerID.String(), Now: time.Now()}); err != nil {
				t.Fatalf("/actions receipt: %v", err)
			}
		}
	}
}

func TestRefusalsOfAnAuthenticatedCallerAreCommittedDenies(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"brokers":["`+brokerID.String()+`"]`)
	s.register(otherID, "")
	cases := []struct {
		name   string
		c      *client
		path   string
		body   string
		code   string
		claims string
	}{
		{"spoofed actor (v1)", s.mtls(agentID), "/v1/actions", `{"actor":"` + otherID.String() + `","action":"demo.echo","resource":"r"}`, "identity.actor_mismatch", otherID.String()},
		{"spoofed actor (JS SDK)", s.bearer(agentID), "/actions", `{"actor":"hello-world-agent","action":"demo.echo","resource":"r"}`, "identity.actor_mismatch", "hello-world-agent"},
		{"unregistered", s.mtls(spiffeIDFrom("/agent/stranger")), "/v1/actions", `{"action":"demo.echo","resource":"r"}`, "agent.unregistered", ""},
		{"broker not allowed", s.mtls(agentID), "/v1/actions", `{"action":"demo.echo","resource":"r","broker":"spiffe://dev.ztlog.local/broker/rogue"}`, "broker.not_allowed", ""},
	}
	for _, tc := range cases {
		r := tc.c.do("POST", tc.path, tc.body)
		if r.status != 403 {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
		var idx uint64
		var lh string
		if tc.path == "/actions" {
			var lr api.LegacyActionResponse
			r.json(t, &lr)
			idx, lh = lr.Audit.Index, lr.Audit.LeafHash
		} else {
			var ar api.ActionResponse
			r.json(t, &ar)
			idx, lh = ar.Log.Index, ar.Log.LeafHash
		}
		d := s.committed(idx, lh)
		if d.Effect != entry.Deny || d.Reasons[0].Code != tc.code || d.ClaimedActor != tc.claims {
			t.Fatalf("%s: committed %+v", tc.name, d)
		}
	}
	// Revocation takes effect at once, and is itself committed.
	before := s.size()
	r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"revoke","id":"`+otherID.String()+`"}`)
	if r.status != 200 || s.size() != before+1 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	r = s.mtls(otherID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status != 403 || s.committed(ar.Log.Index, ar.Log.LeafHash).Reasons[0].Code != "agent.revoked" {
		t.Fatalf("revoked agent: %d %s", r.status, r.body)
	}
	// Non-admins cannot change the registry; nothing is committed.
	before = s.size()
	if r := s.mtls(agentID).do("POST", "/v1/agents", `{"op":"register","id":"`+agentID.String()+`"}`); r.status != 403 {
		t.Fatalf("agent registering itself: %d", r.status)
	}
	if s.size() != before {
		t.Fatal("a refused registry change was committed")
	}
	// Records: the admin and the agent itself may read, others not.
	var rec api.Agent
	s.mtls(adminID).do("GET", "/v1/agents/dev.ztlog.local/agent/other", "").json(t, &rec)
	if rec.Status != "revoked" || rec.By != adminID.String() {
		t.Fatalf("record %+v", rec)
	}
	if r := s.mtls(agentID).do("GET", "/v1/agents/dev.ztlog.local/agent/demo", ""); r.status != 200 {
		t.Fatalf("agent reading itself: %d", r.status)
	}
	if r := s.mtls(agentID).do("GET", "/v1/agents/dev.ztlog.local/agent/other", ""); r.status != 403 {
		t.Fatalf("agent reading another: %d", r.status)
	}
}

func spiffeIDFrom(path string) spiffeid.ID { return spiffeid.RequireFromPath(td, path) }

func TestAnonymousAndMalformedCommitNothing(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	before := s.size()
	agent := s.mtls(agentID)
	expired, _ := s.ca.IssueJWTSVID(agentID, []string{serverID.String()}, -time.Minute)
	wrongAud, _ := s.ca.IssueJWTSVID(agentID, []string{"spiffe://dev.ztlog.local/elsewhere"}, time.Minute)
	for name, tc := range map[string]struct {
		c      *client
		body   string
		status int
		code   string
		field  string
		hdr    []string
	}{
		"anonymous":           {s.anonymous(), `{"action":"demo.echo","resource":"r"}`, 401, "unauthenticated", "Authorization", nil},
		"expired JWT-SVID":    {s.clientWith(nil, expired), `{"action":"demo.echo","resource":"r"}`, 401, "invalid_identity", "Authorization", nil},
		"wrong audience":      {s.clientWith(nil, wrongAud), `{"action":"demo.echo","resource":"r"}`, 401, "invalid_identity", "Authorization", nil},
		"unknown field":       {agent, `{"action":"demo.echo","resource":"r","admin":true}`, 400, api.CodeUnknownField, "admin", nil},
		"wrong type":          {agent, `{"action":["demo.echo"],"resource":"r"}`, 400, api.CodeWrongType, "action", nil},
		"missing":             {agent, `{"action":"demo.echo"}`, 400, api.CodeMissingField, "resource", nil},
		"duplicate":           {agent, `{"action":"demo.echo","action":"aws.ec2.terminate_instances","resource":"r"}`, 400, api.CodeDuplicateField, "action", nil},
		"case":                {agent, `{"Action":"demo.echo","resource":"r"}`, 400, api.CodeUnknownField, "Action", nil},
		"bad utf-8":           {agent, "{\"action\":\"demo.echo\",\"resource\":\"\xff\"}", 400, api.CodeBadUTF8, "", nil},
		"oversize":            {agent, `{"action":"demo.echo","resource":"` + strings.Repeat("x", api.MaxBody) + `"}`, 413, api.CodeTooLarge, "", nil},
		"bad correlation id":  {agent, `{"action":"demo.echo","resource":"r"}`, 400, api.CodeInvalidField, "X-Correlation-ID", []string{"X-Correlation-ID", "has spaces in it"}},
		"conflicting corr id": {agent, `{"action":"demo.echo","resource":"r","correlation_id":"a"}`, 400, api.CodeInvalidField, "correlation_id", []string{"X-Correlation-ID", "b"}},
		"not json":            {agent, `action=demo.echo`, 400, api.CodeMalformedJSON, "", nil},
	} {
		r := tc.c.do("POST", "/v1/actions", tc.body, tc.hdr...)
		var e httperr.Error
		r.json(t, &e)
		if r.status != tc.status || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
			t.Errorf("%s: %d %+v, want %d %s field %q", name, r.status, e, tc.status, tc.code, tc.field)
		}
	}
	if r := agent.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`, "Content-Type", "text/plain"); r.status != 415 {
		t.Errorf("text/plain: %d", r.status)
	}
	if got := s.size(); got != before {
		t.Fatalf("refused requests committed %d entries", got-before)
	}
	// The contract is not served over plain HTTP; the public log API is.
	plain := strings.Replace(s.url, "https://", "http://", 1)
	resp, err := http.Post(plain+"/v1/actions", "application/json", strings.NewReader(`{"action":"demo.echo","resource":"r"}`))
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("plain-HTTP decide: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, err = http.Get(plain + "/log/checkpoint")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain-HTTP checkpoint: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestCorrelationAndRequestLogs(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	svid, _ := s.ca.IssueX509SVID(agentID, devca0())
	c := s.clientWith(svid, "")
	r := c.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	gen := r.header.Get("X-Correlation-ID")
	if len(gen) != 36 {
		t.Fatalf("no generated correlation id: %q", gen)
	}
	var ar api.ActionResponse
	r.json(t, &ar)
	if d := s.committed(ar.Log.Index, ar.Log.LeafHash); d.CorrelationID != gen {
		t.Fatalf("committed correlation id %q, answered %q", d.CorrelationID, gen)
	}
	serial := fmt.Sprintf("%x", svid.Certificates[0].SerialNumber)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var line string
		for _, l := range strings.Split(s.logs.String(), "\n") {
			if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, gen) {
				line = l
			}
		}
		if line != "" {
			for _, want := range []string{`"caller":"` + agentID.String() + `"`, `"svid_serial":"` + serial + `"`, `"peer_serial":"` + serial + `"`,
				`"svid_expires":"`, `"decision":"allow"`, `"correlation_id":"` + gen + `"`} {
				if !strings.Contains(line, want) {
					t.Errorf("request log line lacks %s:\n%s", want, line)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request log line with %s:\n%s", gen, s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegistryIsRebuiltFromTheLog(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, `,"owner":"o1","labels":{"tier":"dev"}`)
	s.register(otherID, "")
	s.register(agentID, `,"owner":"o2"`)
	if r := s.mtls(adminID).do("POST", "/v1/agents", `{"op":"revoke","id":"`+otherID.String()+`"}`); r.status != 200 {
		t.Fatal(r.status)
	}
	for i := 0; i < 5; i++ { // decisions between the agent entries
		s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	}
	s.stop()
	s.start(options{})
	var rec api.Agent
	s.mtls(adminID).do("GET", "/v1/agents?id="+agentID.String(), "").json(t, &rec)
	if rec.Status != "registered" || rec.Owner != "o2" || rec.Labels != nil {
		t.Fatalf("after restart: %+v", rec)
	}
	s.mtls(adminID).do("GET", "/v1/agents?id="+otherID.String(), "").json(t, &rec)
	if rec.Status != "revoked" {
		t.Fatalf("after restart the revoked agent is %+v", rec)
	}
	if r := s.mtls(otherID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`); r.status != 403 {
		t.Fatalf("revoked agent after restart: %d", r.status)
	}
	if r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`); r.status != 200 {
		t.Fatalf("registered agent after restart: %d %s", r.status, r.body)
	}
}

// noAllowEscapes sends n allow-eligible decisions concurrently and checks
// every 200 against the log; it returns the statuses seen.
func noAllowEscapes(t *testing.T, s *server, n int) map[int]int {
	t.Helper()
	agent := s.mtls(agentID)
	var mu sync.Mutex
	statuses := map[int]int{}
	var allows []api.ActionResponse
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := agent.do("POST", "/v1/actions", fmt.Sprintf(`{"action":"demo.echo","resource":"r-%d"}`, i))
			mu.Lock()
			defer mu.Unlock()
			statuses[r.status]++
			switch r.status {
			case 200:
				var ar api.ActionResponse
				r.json(t, &ar)
				allows = append(allows, ar)
			case 503:
				var e httperr.Error
				r.json(t, &e)
				if e.Code == "" || e.Message == "" {
					t.Errorf("503 without a reason: %s", r.body)
				}
			default:
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	for _, ar := range allows {
		if d := s.committed(ar.Log.Index, ar.Log.LeafHash); d.Effect != entry.Allow {
			t.Fatalf("an answered allow is not an allow in the log: %+v", d)
		}
	}
	return statuses
}

func TestStorageFailureFailsClosed(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	agent := s.mtls(agentID)
	if r := agent.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	// Put a file where the tile directory must be: the next write fails.
	tiles := filepath.Join(s.dir, "log", "tile")
	if err := os.Rename(tiles, tiles+".away"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tiles, []byte("not a directory"), 0o644)
	st := noAllowEscapes(t, s, 20)
	if st[200] != 0 || st[503] != 20 {
		t.Fatalf("broken storage: %v", st)
	}
	r := agent.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	var e httperr.Error
	r.json(t, &e)
	if r.status != 503 || e.Code != "log_storage_error" || r.header.Get("Retry-After") == "" {
		t.Fatalf("broken storage answer: %d %s", r.status, r.body)
	}
	// Repair: allows resume.
	os.Remove(tiles)
	os.Rename(tiles+".away", tiles)
	if r := agent.do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`); r.status != 200 {
		t.Fatalf("after repair: %d %s", r.status, r.body)
	}
}

func TestPushbackFailsClosed(t *testing.T) {
	s := newServer(t, options{maxPending: 1, batchMaxAge: 20 * time.Millisecond})
	s.register(agentID, "")
	st := noAllowEscapes(t, s, 60)
	if st[503] == 0 {
		t.Fatalf("60 concurrent decisions against MaxPending=1 saw no pushback: %v", st)
	}
	t.Logf("statuses under pushback: %v", st)
}

func TestCommitTimeoutFailsClosed(t *testing.T) {
	// Batches wait 300ms; decisions may take 50ms: every commit times out.
	s := newServer(t, options{})
	s.register(agentID, "")
	s.stop()
	s.start(options{batchMaxAge: 300 * time.Millisecond, decisionTimeout: 50 * time.Millisecond})
	st := noAllowEscapes(t, s, 10)
	if st[200] != 0 || st[503] != 10 {
		t.Fatalf("timeouts: %v", st)
	}
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	if !bytes.Contains(r.body, []byte("commit_timeout")) {
		t.Fatalf("timeout answer: %d %s", r.status, r.body)
	}
}

func TestPolicyErrorIsACommittedDeny(t *testing.T) {
	dir := t.TempDir()
	// Every rule allows, but evaluating it raises an error (strict builtins).
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package ztlog.authz\nimport rego.v1\ndefault allow := false\nallow if to_number(input.resource) > 0\n"), 0o644)
	s := newServer(t, options{policyDir: dir})
	s.register(agentID, "")
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"not-a-number"}`)
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status != 403 || ar.Reasons[0].Code != "policy.error" || !strings.Contains(ar.Reasons[0].Message, "to_number") {
		t.Fatalf("policy error: %d %s", r.status, r.body)
	}
	if d := s.committed(ar.Log.Index, ar.Log.LeafHash); d.Effect != entry.Deny || d.Reasons[0].Code != "policy.error" {
		t.Fatalf("committed %+v", d)
	}
	// The same policy allows what it can evaluate.
	if r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"5"}`); r.status != 200 {
		t.Fatalf("evaluable input: %d %s", r.status, r.body)
	}
}

func TestPolicyPanicIsACommittedDeny(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	s.pdp.Swap(panicPolicy{s.pdp.Current()})
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status != 403 || ar.Reasons[0].Code != "policy.error" || !strings.Contains(ar.Reasons[0].Message, "panic") {
		t.Fatalf("panicking policy: %d %s", r.status, r.body)
	}
	s.committed(ar.Log.Index, ar.Log.LeafHash)
}

func TestShutdownFailsClosed(t *testing.T) {
	s := newServer(t, options{})
	s.register(agentID, "")
	// The log closes under the gate: decisions answer 503, never allow.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.svc.Log().Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	if r.status != 503 || !bytes.Contains(r.body, []byte("shutting_down")) {
		t.Fatalf("closed log: %d %s", r.status, r.body)
	}
}

// A policy cannot make a decision uncommittable: oversized or unprintable
// reasons are cut to what the entry format accepts.
func TestPolicyReasonsAreMadeCommittable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte(`package ztlog.authz
import rego.v1
default allow := false
long := concat("", [x | some _ in numbers.range(1, 1100); x := "m"])
reasons contains {"code": sprintf("c%d\n", [i]), "message": long} if some i in numbers.range(1, 20)
`), 0o644)
	s := newServer(t, options{policyDir: dir})
	s.register(agentID, "")
	r := s.mtls(agentID).do("POST", "/v1/actions", `{"action":"demo.echo","resource":"r"}`)
	var ar api.ActionResponse
	r.json(t, &ar)
	if r.status != 403 || len(ar.Reasons) != 16 || ar.Reasons[15].Code != "policy.more_reasons" || strings.ContainsRune(ar.Reasons[0].Code, '\n') || len(ar.Reasons[0].Message) != 1024 {
		t.Fatalf("%d %d reasons: %.300s", r.status, len(ar.Reasons), r.body)
	}
	s.committed(ar.Log.Index, ar.Log.LeafHash)
}
