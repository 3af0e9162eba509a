package main

// End to end: a ztlog service (the same assembly `ztlog serve
// --witness-policy` makes) with a two-of-three trust policy over three real
// zt-witness processes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/verifier/splitview"
)

type witnessSet struct {
	names, keys, vkeys, states, urls []string
	procs                            []*witnessProc
	cfg                              string
}

// startWitnesses starts n zt-witness processes that cosign the log with
// the given verifier key.
func startWitnesses(t *testing.T, n int, origin, logVKey string) *witnessSet {
	t.Helper()
	dir := t.TempDir()
	ws := &witnessSet{cfg: filepath.Join(dir, "witness.json")}
	os.WriteFile(ws.cfg, []byte(fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, origin, logVKey)), 0o644)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("w%d", i)
		key, vkey := keygen(t, dir, "witness.example/"+name)
		ws.names = append(ws.names, name)
		ws.keys = append(ws.keys, key)
		ws.vkeys = append(ws.vkeys, vkey)
		ws.states = append(ws.states, filepath.Join(dir, name+"-state"))
		ws.procs = append(ws.procs, nil)
		ws.urls = append(ws.urls, "")
		ws.start(t, i-1)
	}
	return ws
}

// start starts witness i, on the address it had before if it ran before
// (the policy names its URL).
func (ws *witnessSet) start(t *testing.T, i int) {
	t.Helper()
	args := []string{"--config", ws.cfg, "--key", ws.keys[i], "--state", ws.states[i]}
	if ws.urls[i] != "" {
		args = append(args, "--listen", strings.TrimSuffix(strings.TrimPrefix(ws.urls[i], "http://"), "/"))
	}
	ws.procs[i] = startWitness(t, witnessBin, nil, args...)
	ws.urls[i] = ws.procs[i].url + "/"
}

func (ws *witnessSet) policy(logVKey string, k int) string {
	s := "log " + logVKey + "\n"
	for i, n := range ws.names {
		s += fmt.Sprintf("witness %s %s %s\n", n, ws.vkeys[i], ws.urls[i])
	}
	return s + fmt.Sprintf("group witnesses %d %s\nquorum witnesses\n", k, strings.Join(ws.names, " "))
}

type runningLog struct {
	svc    *server.Service
	base   string
	logs   *devproc.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startLog assembles the service as `ztlog serve --witness-policy` does
// (without witnesses when policyText is empty).
func startLog(t *testing.T, key *ztlog.Key, dataDir, policyText string) *runningLog {
	t.Helper()
	r := &runningLog{logs: &devproc.SyncBuffer{}, done: make(chan error, 1)}
	logger := slog.New(slog.NewJSONHandler(r.logs, nil))
	cfg := server.Config{
		Storage: posix.Opener(posix.Config{Dir: dataDir}), Key: key, CheckpointInterval: 200 * time.Millisecond,
		ShutdownTimeout: 3 * time.Second, Logger: logger,
	}
	var c *witnessing.Collector
	if policyText != "" {
		p, err := trustpolicy.Parse([]byte(policyText))
		if err != nil {
			t.Fatal(err)
		}
		c, err = witnessing.New(p, witnessing.Options{Origin: key.Origin(), Timeout: 2 * time.Second, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Witnessing = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	svc, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.svc, r.base = svc, "http://"+ln.Addr().String()
	go func() { r.done <- svc.Serve(ctx, ln) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runningLog) stop() {
	r.cancel()
	<-r.done
	r.done <- nil // idempotent for t.Cleanup
}

func (r *runningLog) appendN(t *testing.T, n int, prefix string) uint64 {
	t.Helper()
	var idx uint64
	for i := 0; i < n; i++ {
		var err error
		idx, err = r.svc.Log().Append(context.Background(), []byte(fmt.Sprintf(`{"%s":%d}`, prefix, i)))
		if err != nil {
			t.Fatal(err)
		}
	}
	return idx
}

func (r *runningLog) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestWitnessedLogTwoOfThree(t *testing.T) {
	skey, vkey, _ := ztlog.GenerateKey("e2e.example/ztlog")
	key, _ := ztlog.ParseKey(skey)
	ws := startWitnesses(t, 3, key.Origin(), vkey)
	text := ws.policy(vkey, 2)
	trust, _ := trustpolicy.Parse([]byte(text))
	r := startLog(t, key, t.TempDir(), text)

	// Published checkpoints carry at least two verifying cosignatures.
	for round := 0; round < 3; round++ {
		idx := r.appendN(t, 10, fmt.Sprintf("round%d", round))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := r.svc.Log().Await(ctx, idx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, r.logs)
		}
		status, raw := r.get(t, "/log/checkpoint")
		cp, err := trust.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{Now: time.Now()})
		if status != 200 || err != nil {
			t.Fatalf("round %d: published checkpoint does not meet the 2-of-3 policy: %v\n%s", round, err, raw)
		}
		if len(cp.Cosignatures) < 2 || cp.Size <= idx {
			t.Fatalf("round %d: %d cosignatures, size %d", round, len(cp.Cosignatures), cp.Size)
		}
	}
	if status, body := r.get(t, "/readyz"); status != 200 || !strings.Contains(string(body), `"met":true`) {
		t.Fatalf("readyz %d %s", status, body)
	}
	_, before := r.get(t, "/log/checkpoint")
	beforeCP, _ := trust.VerifyCheckpoint(before, trustpolicy.VerifyOptions{})

	// Two witnesses down: nothing new is published, and the log says why.
	ws.procs[1].kill()
	ws.procs[2].kill()
	idx := r.appendN(t, 5, "after")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := r.svc.Log().Await(ctx, idx)
	cancel()
	if err == nil {
		t.Fatal("a checkpoint covering new entries was published with two of three witnesses down")
	}
	_, now := r.get(t, "/log/checkpoint")
	nowCP, err := trust.VerifyCheckpoint(now, trustpolicy.VerifyOptions{})
	if err != nil || nowCP.Size != beforeCP.Size {
		t.Fatalf("published checkpoint changed to size %d (from %d) without quorum: %v", nowCP.Size, beforeCP.Size, err)
	}
	status, body := r.get(t, "/readyz")
	var ready server.Readiness
	json.Unmarshal(body, &ready)
	msg := ready.Checks["witnesses"]
	if status != 503 || ready.Ready {
		t.Fatalf("readyz %d with two witnesses down: %s", status, body)
	}
	for _, want := range []string{"no new checkpoint can be published", `group "witnesses" has 1 of the 2 it needs (w1)`, "w2: unreachable", "w3: unreachable"} {
		if !strings.Contains(msg, want) {
			t.Errorf("readyz witnesses check lacks %q: %s", want, msg)
		}
	}
	for _, w := range []string{"w2", "w3"} {
		if !strings.Contains(r.logs.String(), `"msg":"witness not cosigning","witness":"`+w+`"`) {
			t.Errorf("the log's logs do not say %s stopped cosigning:\n%s", w, r.logs)
		}
	}
	// And Tessera's own line (through klog, as in ztlog serve).
	if !strings.Contains(klogSink.String(), "witness policy was not satisfied") {
		t.Errorf("no \"witness policy was not satisfied\" from Tessera")
	}

	// One witness back (same state, same address): the quorum is met again
	// and the waiting entries are published.
	ws.start(t, 1)
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	_, err = r.svc.Log().Await(ctx, idx)
	cancel()
	if err != nil {
		t.Fatalf("publication did not resume with the quorum back: %v", err)
	}
	waitUntil(t, func() bool { status, _ := r.get(t, "/readyz"); return status == 200 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// klogSink receives Tessera's klog output (set once in TestMain).
var klogSink = &devproc.SyncBuffer{}

// metric reads one counter value from a witness's /metrics.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscanf(rest, "%g", &v)
			return v
		}
	}
	return 0
}

// A log forked with the same key is refused by the witnesses (409, then
// 422 once it sends a proof from its own tree), they file the evidence, and
// `zt-witness federate` pointed at the fork emits split-view evidence that
// verifies.
func TestForkedLogRefusedAndCaught(t *testing.T) {
	skey, vkey, _ := ztlog.GenerateKey("fork.example/ztlog")
	key, _ := ztlog.ParseKey(skey)
	ws := startWitnesses(t, 3, key.Origin(), vkey)
	text := ws.policy(vkey, 2)

	// The honest log, witnessed: every witness that took part holds size 10.
	honest := startLog(t, key, t.TempDir(), text)
	idx := honest.appendN(t, 10, "honest")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	if _, err := honest.svc.Log().Await(ctx, idx); err != nil {
		t.Fatal(err)
	}
	cancel()

	// The fork: same key, another history of 20 entries, published without
	// witnesses, then restarted with the same witness policy.
	forkDir := t.TempDir()
	fork := startLog(t, key, forkDir, "")
	idx = fork.appendN(t, 20, "fork")
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	if _, err := fork.svc.Log().Await(ctx, idx); err != nil {
		t.Fatal(err)
	}
	cancel()
	fork.stop()
	var before [3]float64
	for i := range ws.procs {
		before[i] = metric(t, ws.procs[i].url, `ztwitness_add_checkpoint_total{status="422"}`)
	}
	fork = startLog(t, key, forkDir, text)
	idx = fork.appendN(t, 1, "fork-more")
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	_, err := fork.svc.Log().Await(ctx, idx)
	cancel()
	if err == nil {
		t.Fatal("the fork published a new checkpoint with the honest log's witnesses")
	}
	refused := 0
	for i := range ws.procs {
		if metric(t, ws.procs[i].url, `ztwitness_add_checkpoint_total{status="409"}`) >= 1 &&
			metric(t, ws.procs[i].url, `ztwitness_add_checkpoint_total{status="422"}`) > before[i] {
			refused++
		}
	}
	if refused < 2 {
		t.Fatalf("%d witnesses answered the fork 409 then 422; want at least 2", refused)
	}
	_, body := fork.get(t, "/readyz")
	if !strings.Contains(string(body), "HTTP 422") || !strings.Contains(string(body), "possible fork") {
		t.Fatalf("the fork's readiness does not say why: %s", body)
	}
	// The witnesses filed what the fork sent them.
	lv, _ := splitview.VerifierKeys([]string{vkey})
	filed := 0
	for _, st := range ws.states {
		files, _ := filepath.Glob(filepath.Join(st, "evidence", "split-view-*.json"))
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			if _, err := splitview.Verify(raw, lv); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			filed++
		}
	}
	if filed < 2 {
		t.Fatalf("%d evidence files from the witnesses, want at least 2", filed)
	}

	// Federation: w1's federate points at the fork's URL and gossips with w2
	// and w3.
	dir := t.TempDir()
	fcfg := filepath.Join(dir, "federate.json")
	peers := []string{}
	for i := 1; i < 3; i++ {
		peers = append(peers, fmt.Sprintf(`{"name":%q,"verifier_key":%q,"url":%q}`, ws.names[i], ws.vkeys[i], ws.urls[i]))
	}
	os.WriteFile(fcfg, []byte(fmt.Sprintf(`{
  "logs": [{"origin": %q, "verifier_key": %q, "url": %q}],
  "peers": [%s],
  "federate": {"witness_url": %q, "witness_key": %q}
}`, key.Origin(), vkey, fork.base+"/log/", strings.Join(peers, ","), ws.urls[0], ws.vkeys[0])), 0o644)
	out, err := exec.Command(witnessBin, "federate", "--once", "--config", fcfg, "--state", filepath.Join(dir, "state")).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "SPLIT VIEW fork.example/ztlog") {
		t.Fatalf("federate --once on a fork: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "state", "evidence", "split-view-*.json"))
	if len(files) == 0 {
		t.Fatal("federate filed no evidence")
	}
	trustFile := filepath.Join(dir, "trust.policy")
	os.WriteFile(trustFile, []byte(text), 0o644)
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		v, err := splitview.Verify(raw, lv)
		if err != nil || !v.Conclusive {
			t.Fatalf("%s: %+v %v", f, v, err)
		}
		// And as an auditor checks it, with the log key from the trust policy.
		out, err := exec.Command(auditBin, "verify", f, "--policy", trustFile).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "VERIFIED: the log misbehaved") {
			t.Fatalf("zt-audit verify %s: %v\n%s", f, err, out)
		}
	}
	// Pointed at the honest log instead, federate finds nothing wrong.
	os.WriteFile(fcfg, []byte(fmt.Sprintf(`{
  "logs": [{"origin": %q, "verifier_key": %q, "url": %q}],
  "peers": [%s],
  "federate": {"witness_url": %q, "witness_key": %q}
}`, key.Origin(), vkey, honest.base+"/log/", strings.Join(peers, ","), ws.urls[0], ws.vkeys[0])), 0o644)
	out, err = exec.Command(witnessBin, "federate", "--once", "--config", fcfg, "--state", filepath.Join(t.TempDir(), "state")).Output()
	if err != nil || !strings.Contains(string(out), "ok fork.example/ztlog") {
		t.Fatalf("federate --once on the honest log: %v\n%s", err, out)
	}
}
