package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/internal/devca"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/verifier/history"
)

const (
	demoAgent   = "spiffe://dev.ztlog.local/agent/demo"
	secondAgent = "spiffe://dev.ztlog.local/agent/second"
)

// issueSecondAgent writes an X.509-SVID for secondAgent, from the dev CA.
func issueSecondAgent(t *testing.T, d *devproc.Dev) string {
	t.Helper()
	ca, err := devca.Load(d.DevFile("ca"))
	if err != nil {
		t.Fatal(err)
	}
	svid, err := ca.IssueX509SVID(spiffeid.RequireFromString(secondAgent), devca.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "second")
	if err := devca.WriteSVID(prefix, svid); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func ztDecide(t *testing.T, zt string, d *devproc.Dev, svid, action, corr string) api.ActionResponse {
	t.Helper()
	cmd := exec.Command(zt, "decide", "--server", d.URL(), "--svid", svid, "--bundle", d.DevFile("bundle.pem"),
		"--action", action, "--resource", "r", "--correlation-id", corr, "--json", "--timeout", "60s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	var ar api.ActionResponse
	if err := json.Unmarshal(out, &ar); err != nil || ar.Decision == "" {
		t.Fatalf("zt decide %s as %s: %s\n%s\nztlog dev: %s", action, svid, out, stderr.String(), d.Stderr.String())
	}
	return ar
}

type runReport struct {
	DecisionIndex uint64  `json:"decision_index"`
	ResultIndex   *uint64 `json:"result_index"`
}

// ztRun runs demo.echo through zt run (the dev broker, sandboxed) as the
// demo agent and returns its report.
func ztRun(t *testing.T, zt string, d *devproc.Dev) *runReport {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	out, err := exec.Command(zt, "run", "--server", d.URL(), "--svid", d.DevFile("agent"), "--model", "anthropic/claude-sonnet-4",
		"--report", report, "--action", "demo.echo", "--resource", "demo://hello", "--", "echo", "hi").CombinedOutput()
	if err != nil {
		t.Fatalf("zt run: %v\n%s", err, out)
	}
	var rep runReport
	raw, _ := os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil || rep.ResultIndex == nil {
		t.Fatalf("zt run report: %v %s", err, raw)
	}
	return &rep
}

// waitIndexed waits until the history index covers index.
func waitIndexed(t *testing.T, base string, index uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(base + "/v1/history/checkpoint")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ic, err := history.ParseIndexText(string(b[:bytes.Index(b, []byte("\n\n"))+1])); resp.StatusCode == 200 && err == nil && ic.Size > index {
			return
		}
	}
	t.Fatalf("the history index never covered entry %d", index)
}

func timelineOf(t *testing.T, out string) *history.Timeline {
	t.Helper()
	var tl history.Timeline
	if err := json.Unmarshal([]byte(out), &tl); err != nil {
		t.Fatalf("timeline: %v\n%s", err, out)
	}
	return &tl
}

// TestHistoryEndToEnd: a real `ztlog dev`, decisions as two agents and (with
// bubblewrap) a sandboxed run whose broker result joins the agent; the
// history of one holds exactly its decisions and verifies; the history of
// a correlation id holds both agents'; answers tampered by a proxy fail
// naming what broke; bad queries get 4xx naming the parameter; zt-audit
// audit checks the served index; after a restart the index is rebuilt
// from the log and still verifies.
func TestHistoryEndToEnd(t *testing.T) {
	bins := t.TempDir()
	ztlogBin, ztBin := buildBin(t, bins, "../ztlog"), buildBin(t, bins, "../zt")
	dir := t.TempDir()
	d := devproc.Start(t, ztlogBin, dir, "--decision-timeout", "30s")
	second := issueSecondAgent(t, d)
	var demo []uint64
	demo = append(demo, ztDecide(t, ztBin, d, d.DevFile("agent"), "demo.echo", "incident-1").Log.Index)
	other := ztDecide(t, ztBin, d, second, "demo.echo", "incident-1").Log.Index
	demo = append(demo, ztDecide(t, ztBin, d, d.DevFile("agent"), "aws.ec2.terminate_instances", "incident-2").Log.Index)
	// With bubblewrap, a sandboxed run: an allow and its broker's result.
	var ran *runReport
	if _, err := exec.LookPath("bwrap"); err == nil {
		ran = ztRun(t, ztBin, d)
		demo = append(demo, ran.DecisionIndex)
	} else {
		t.Log("bubblewrap (bwrap) is not installed: no sandboxed run, so no result entry in the history")
	}
	base := "http://" + d.Addr
	last := demo[len(demo)-1]
	if ran != nil {
		last = *ran.ResultIndex
	}
	waitIndexed(t, base, last)
	policy := d.DevFile("trust.policy")

	out, code := runAudit(t, "history", "--agent", demoAgent, "--log", base, "--policy", policy, "--json")
	if code != 0 {
		t.Fatalf("zt-audit history --agent: exit %d\n%s", code, out)
	}
	tl := timelineOf(t, out)
	var decisions []uint64
	for _, e := range tl.Events {
		if e.Kind == "decision" {
			decisions = append(decisions, e.Index)
			if e.Actor != demoAgent {
				t.Errorf("entry %d in the demo agent's history has actor %s", e.Index, e.Actor)
			}
		}
		if e.Index == other {
			t.Errorf("the second agent's decision %d is in the demo agent's history", other)
		}
	}
	if fmt.Sprint(decisions) != fmt.Sprint(demo) {
		t.Errorf("the demo agent's decisions are %v, want %v", decisions, demo)
	}
	if ran != nil {
		found := false
		for _, e := range tl.Events {
			if e.Kind == "result" && e.Index == *ran.ResultIndex {
				found = true
				if e.DecisionIndex == nil || *e.DecisionIndex != ran.DecisionIndex {
					t.Errorf("the result at %d names decision %v, want %d", e.Index, e.DecisionIndex, ran.DecisionIndex)
				}
			}
		}
		if !found {
			t.Errorf("the broker's result at %d is not in the demo agent's history", *ran.ResultIndex)
		}
	}
	if !tl.Verified {
		t.Error("timeline not marked verified")
	}

	out, code = runAudit(t, "history", "--correlation-id", "incident-1", "--log", base+"/log/", "--policy", policy, "--json")
	if code != 0 {
		t.Fatalf("zt-audit history --correlation-id: exit %d\n%s", code, out)
	}
	var corr []uint64
	for _, e := range timelineOf(t, out).Events {
		corr = append(corr, e.Index)
	}
	if want := fmt.Sprint([]uint64{demo[0], other}); fmt.Sprint(corr) != want {
		t.Errorf("incident-1 holds %v, want %v", corr, want)
	}

	out, code = runAudit(t, "history", "--agent", demoAgent, "--log", base, "--policy", policy)
	if code != 0 || !strings.Contains(out, "VERIFIED: the ") || !strings.Contains(out, "policy versions in force:") {
		t.Errorf("zt-audit history (text): exit %d\n%s", code, out)
	}
	t.Logf("zt-audit history --agent %s:\n%s", demoAgent, out)

	t.Run("tampered answers", func(t *testing.T) { historyTampering(t, base, policy, other) })
	t.Run("bad queries", func(t *testing.T) { historyBadQueries(t, base) })

	out, code = runAudit(t, "audit", "--log", base, "--policy", policy, "--json", "--progress", "never")
	if code != 0 || !strings.Contains(out, `"id": "history.index"`) {
		t.Fatalf("zt-audit audit: exit %d\n%s", code, out)
	}
	var rep struct {
		Checks []struct {
			ID      string `json:"id"`
			Checked int    `json:"checked"`
			Failed  int    `json:"failed"`
			Warned  int    `json:"warned"`
		} `json:"checks"`
	}
	json.Unmarshal([]byte(out), &rep)
	for _, c := range rep.Checks {
		if c.ID == "history.index" && (c.Checked != 1 || c.Failed != 0 || c.Warned != 0) {
			t.Errorf("history.index: checked %d, failed %d, warned %d", c.Checked, c.Failed, c.Warned)
		}
	}

	// Restart: the index is rebuilt from the log.
	d.Cmd.Process.Signal(syscall.SIGTERM)
	d.Cmd.Wait()
	d2 := devproc.Start(t, ztlogBin, dir, "--decision-timeout", "30s")
	base2 := "http://" + d2.Addr
	waitIndexed(t, base2, demo[1])
	out, code = runAudit(t, "history", "--agent", demoAgent, "--log", base2, "--policy", policy, "--json")
	if code != 0 {
		t.Fatalf("after a restart: exit %d\n%s", code, out)
	}
	decisions = nil
	for _, e := range timelineOf(t, out).Events {
		if e.Kind == "decision" {
			decisions = append(decisions, e.Index)
		}
	}
	if fmt.Sprint(decisions) != fmt.Sprint(demo) {
		t.Errorf("after a restart the demo agent's decisions are %v, want %v", decisions, demo)
	}
}

// tamperProxy forwards to upstream and rewrites /v1/history answers.
type tamperProxy struct {
	mu     sync.Mutex
	tamper func(a *history.Answer)
}

func (p *tamperProxy) handler(upstream string) http.Handler {
	u, _ := url.Parse(upstream)
	rp := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		tamper := p.tamper
		p.mu.Unlock()
		if r.URL.Path != "/v1/history" || tamper == nil {
			rp.ServeHTTP(w, r)
			return
		}
		resp, err := http.Get(upstream + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a history.Answer
		if err := json.Unmarshal(b, &a); err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		tamper(&a)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&a)
	})
}

func historyTampering(t *testing.T, base, policy string, other uint64) {
	p := &tamperProxy{}
	srv := httptest.NewServer(p.handler(base))
	defer srv.Close()
	// The second agent's decision, to slip into the demo agent's history.
	resp, err := http.Get(base + "/v1/history?agent=" + url.QueryEscape(secondAgent))
	if err != nil {
		t.Fatal(err)
	}
	var theirs history.Answer
	json.NewDecoder(resp.Body).Decode(&theirs)
	resp.Body.Close()
	var otherLeaf []byte
	for _, it := range theirs.Entries {
		if it.Index == other {
			otherLeaf = it.Leaf
		}
	}
	if otherLeaf == nil {
		t.Fatalf("the second agent's history lacks its decision %d", other)
	}
	cases := []struct {
		name   string
		tamper func(a *history.Answer)
		want   string
	}{
		{"an entry left out", func(a *history.Answer) { a.Entries = a.Entries[1:] }, "entries are not the key's committed list"},
		{"another agent's entry added", func(a *history.Answer) {
			a.Entries = append(a.Entries, history.Item{Index: other, Leaf: otherLeaf})
		}, "entries are not the key's committed list"},
		{"an entry replaced by another agent's", func(a *history.Answer) {
			a.Entries[len(a.Entries)-1] = history.Item{Index: other, Leaf: otherLeaf}
		}, "entries are not the key's committed list"},
		{"forged map root", func(a *history.Answer) {
			lines := strings.Split(a.IndexCheckpoint, "\n")
			lines[5] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			a.IndexCheckpoint = strings.Join(lines, "\n")
		}, "index checkpoint signature does not verify"},
		{"wrong size", func(a *history.Answer) { a.Size-- }, "log checkpoint does not verify"},
		{"reordered", func(a *history.Answer) { a.Entries[0], a.Entries[1] = a.Entries[1], a.Entries[0] }, "not in increasing index order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.mu.Lock()
			p.tamper = c.tamper
			p.mu.Unlock()
			out, code := runAudit(t, "history", "--agent", demoAgent, "--log", srv.URL, "--policy", policy)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("output does not say %q:\n%s", c.want, out)
			}
		})
	}
}

func historyBadQueries(t *testing.T, base string) {
	cases := []struct {
		query        string
		status       int
		code, field  string
		inTheMessage string
	}{
		{"", 400, "bad_query", "agent", "exactly one"},
		{"agent=" + url.QueryEscape(demoAgent) + "&correlation_id=x", 400, "bad_query", "agent", "exactly one"},
		{"agent=demo", 400, "invalid_field", "agent", "SPIFFE"},
		{"correlation_id=" + url.QueryEscape("a\u202eb"), 400, "invalid_field", "correlation_id", "U+202E"},
		{"correlation_id=" + strings.Repeat("x", 257), 400, "invalid_field", "correlation_id", "256"},
		{"agent=" + url.QueryEscape(demoAgent) + "&size=abc", 400, "bad_size", "size", "decimal"},
		{"agent=" + url.QueryEscape(demoAgent) + "&size=1", 409, "size_not_indexed", "size", "ask for size="},
		{"agent=" + url.QueryEscape(demoAgent) + "&limit=5", 400, "unknown_parameter", "limit", "limit"},
		{"agent=a&agent=b", 400, "bad_query", "agent", "once"},
	}
	for _, c := range cases {
		resp, err := http.Get(base + "/v1/history?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Code, Field, Message string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("?%.40s: status %d, want %d", c.query, resp.StatusCode, c.status)
		}
		if e.Code != c.code {
			t.Errorf("?%.40s: code %q, want %q", c.query, e.Code, c.code)
		}
		if e.Field != c.field {
			t.Errorf("?%.40s: field %q, want %q", c.query, e.Field, c.field)
		}
		if !strings.Contains(e.Message, c.inTheMessage) {
			t.Errorf("?%.40s: message %q does not say %q", c.query, e.Message, c.inTheMessage)
		}
	}
}
