package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/contract/entry"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/httpread"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
	"github.com/zt-infra/ztlog/verifier/monitor"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Tessera logs through klog; keep the test output to the tests.
func init() { klog.SetSlogLogger(quiet) }

type logKey struct {
	key    *ztlog.Key
	signer note.Signer
	policy string // path of a trust policy naming the key
}

func newLogKey(t *testing.T, origin string) logKey {
	t.Helper()
	skey, vkey, err := ztlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trust.policy")
	if err := os.WriteFile(p, []byte("log "+vkey+"\nquorum none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return logKey{key: k, signer: k.Signer, policy: p}
}

func expectExit(t *testing.T, out string, code, want int, phrases ...string) {
	t.Helper()
	if code != want {
		t.Fatalf("exit %d, want %d:\n%s", code, want, out)
	}
	for _, p := range phrases {
		if !strings.Contains(out, p) {
			t.Fatalf("output lacks %q:\n%s", p, out)
		}
	}
}

func TestVerifyLegacy(t *testing.T) {
	const v = "../../testdata/legacy/"
	out, code := runAudit(t, "verify", "--legacy", v+"denied-audit.json")
	expectExit(t, out, code, 1, "current_hash   PASS", "kms_signature  UNVERIFIABLE", "MOCK_ECDSA_SHA_256", "NOT VALID: record 0: kms_signature is unverifiable")
	out, code = runAudit(t, "verify", "--legacy", v+"denied-audit.json", "--kms-key", v+"kms-test-key.pub.pem")
	expectExit(t, out, code, 1, "UNVERIFIABLE")
	out, code = runAudit(t, "verify", "--legacy", v+"denied-audit.json", "--hash-only")
	expectExit(t, out, code, 0, "SKIPPED", "VALID")

	out, code = runAudit(t, "verify", "--legacy", v+"control-plane-chain.jsonl", "--kms-key", v+"kms-test-key.pub.pem")
	expectExit(t, out, code, 0, "links to record 1", "VALID: every hash, link and signature verifies")
	out, code = runAudit(t, "verify", "--legacy", v+"control-plane-chain.jsonl")
	expectExit(t, out, code, 1, "no KMS public key given")

	raw, _ := os.ReadFile(v + "control-plane-chain.jsonl")
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	os.WriteFile(tampered, []byte(strings.Replace(string(raw), `"decision":"deny"`, `"decision":"allow"`, 1)), 0o644)
	out, code = runAudit(t, "verify", "--legacy", tampered, "--kms-key", v+"kms-test-key.pub.pem", "--json")
	expectExit(t, out, code, 1, `"name": "record 1: current_hash"`, `"verdict": "fail"`)

	out, code = runAudit(t, "verify", "--legacy", v+"README.md")
	expectExit(t, out, code, 2, "not a legacy audit record file")
	out, code = runAudit(t, "verify", "--legacy", v+"denied-audit.json", "--kms-key", v+"denied-audit.json")
	expectExit(t, out, code, 2, "--kms-key")
}

// writeScenarioLog writes the default scenario's n entries plus extra as a
// log directory.
func writeScenarioLog(t *testing.T, k logKey, n uint64, extra func(es [][]byte) [][]byte) string {
	t.Helper()
	entries := audittest.Slice(audittest.DefaultScenario().Entries(n))
	if extra != nil {
		entries = append(entries, extra(entries)...)
	}
	dir := t.TempDir()
	if _, err := audittest.WriteLog(dir, k.signer, audittest.Of(entries)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditCommand(t *testing.T) {
	k := newLogKey(t, "example.com/zt-audit-test")
	dir := writeScenarioLog(t, k, 1000, nil)
	out, code := runAudit(t, "audit", "--log", dir, "--policy", k.policy, "--now", "2026-11-21T09:00:05Z")
	expectExit(t, out, code, 0, "log       example.com/zt-audit-test", "tree      size 1000", "VALID: every check passed", "results link to an earlier allow of the same action")

	// A result that links to a deny: the first failing check is named.
	dir = writeScenarioLog(t, k, 1000, func(es [][]byte) [][]byte {
		for i, b := range es {
			e, _ := entry.Parse(b)
			if d, ok := e.(*entry.Decision); ok && d.Effect == entry.Deny {
				fake := audittest.Allow(audittest.DefaultScenario().Start, 1, d.Actor)
				fake.ActionDigest = d.ActionDigest
				return [][]byte{audittest.MustMarshal(audittest.ResultFor(audittest.DefaultScenario().Start.Add(time.Hour), uint64(i), b, fake))}
			}
		}
		return nil
	})
	out, code = runAudit(t, "audit", "--log", dir, "--policy", k.policy)
	expectExit(t, out, code, 1, "INVALID: first failing check result.link: result at entry 1000 links to entry", "which is not an allow decision")
	out, code = runAudit(t, "audit", "--log", dir, "--policy", k.policy, "--json")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if rep.Valid || rep.First.Check != audit.CheckResultLink || *rep.First.Index != 1000 {
		t.Fatalf("json report: %+v", rep.First)
	}

	// A tampered tile.
	dir = writeScenarioLog(t, k, 1000, nil)
	p := filepath.Join(dir, layout.TilePath(0, 1, 0))
	b, _ := os.ReadFile(p)
	b[40] ^= 1
	os.WriteFile(p, b, 0o644)
	out, code = runAudit(t, "audit", "--log", dir, "--policy", k.policy, "--merkle-only")
	expectExit(t, out, code, 1, "INVALID: first failing check tree.tiles: tile tile/0/001 differs")

	// Unusable input: exit 2.
	out, code = runAudit(t, "audit", "--log", t.TempDir(), "--policy", k.policy)
	expectExit(t, out, code, 2, "read checkpoint")
	out, code = runAudit(t, "audit", "--log", dir, "--policy", "../../testdata/policy/invalid/crlf.policy")
	expectExit(t, out, code, 2, "carriage return")
	other := newLogKey(t, "example.com/zt-audit-test")
	out, code = runAudit(t, "audit", "--log", dir, "--policy", other.policy)
	expectExit(t, out, code, 1, "INVALID: first failing check checkpoint")
}

// serveLog serves a real log (package log over Tessera POSIX) with the log
// read API on 127.0.0.1 and returns its base URL and the log.
func serveLog(t *testing.T, k logKey) (string, *ztlog.Log) {
	t.Helper()
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: k.key, CheckpointInterval: 10 * time.Millisecond, BatchMaxAge: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	httpread.Register(r, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		l.Close(context.Background())
	})
	return "http://" + ln.Addr().String(), l
}

func appendAll(t *testing.T, l *ztlog.Log, entries [][]byte) {
	t.Helper()
	ctx := context.Background()
	var last uint64
	var err error
	for _, e := range entries {
		if last, err = l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Await(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// The commands against a log served over HTTP: audit (given the server's
// base URL), consistency from a saved checkpoint, and the monitor with a
// webhook.
func TestAgainstServedLog(t *testing.T) {
	k := newLogKey(t, "example.com/zt-audit-served")
	base, l := serveLog(t, k)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(120))
	appendAll(t, l, entries[:60])

	out, code := runAudit(t, "audit", "--log", base, "--policy", k.policy)
	expectExit(t, out, code, 0, "tree      size 60", "VALID")

	old := filepath.Join(t.TempDir(), "old.checkpoint")
	cp, _ := l.Checkpoint()
	os.WriteFile(old, cp.Note, 0o644)

	var hooks []monitor.Alert
	var mu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a monitor.Alert
		json.NewDecoder(r.Body).Decode(&a)
		mu.Lock()
		hooks = append(hooks, a)
		mu.Unlock()
	}))
	defer hook.Close()
	state := t.TempDir()
	out, code = runAudit(t, "monitor", "--log", base+"/log/", "--policy", k.policy, "--state", state, "--once", "--webhook", hook.URL, "--window", "1000h")
	expectExit(t, out, code, 0)
	if strings.Contains(out, `"kind"`) {
		t.Fatalf("alerts on an honest log: %s", out)
	}

	appendAll(t, l, entries[60:])
	out, code = runAudit(t, "consistency", old, "-", "--log", base+"/log/", "--policy", k.policy)
	expectExit(t, out, code, 0, "CONSISTENT: the tree of size 60 is a prefix of the tree of size 120")
	out, code = runAudit(t, "monitor", "--log", base+"/log/", "--policy", k.policy, "--state", state, "--once", "--webhook", hook.URL, "--window", "1000h")
	expectExit(t, out, code, 0, "resuming example.com/zt-audit-served at size 60")

	// The same key signs another view: the monitor alerts, on stdout and
	// to the webhook, and exits 1; consistency says INCONSISTENT.
	forkBase, fork := serveLog(t, k)
	other := audittest.DefaultScenario()
	other.Start = other.Start.Add(time.Second)
	appendAll(t, fork, append(append([][]byte(nil), entries[:30]...), audittest.Slice(other.Entries(150))[30:]...))
	out, code = runAudit(t, "monitor", "--log", forkBase, "--policy", k.policy, "--state", state, "--once", "--webhook", hook.URL, "--window", "1000h")
	expectExit(t, out, code, 1, `"kind":"checkpoint.inconsistent"`, "consistency proof does not verify")
	mu.Lock()
	if len(hooks) != 1 || hooks[0].Kind != monitor.KindInconsistent || hooks[0].Checkpoint == "" || hooks[0].Previous == "" {
		t.Fatalf("webhook got %+v", hooks)
	}
	mu.Unlock()
	out, code = runAudit(t, "consistency", old, "-", "--log", forkBase, "--policy", k.policy)
	expectExit(t, out, code, 1, "INCONSISTENT")
}
