package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/testutil/workloadtest"
)

// zt runs the zt binary and returns its exit status, stdout and stderr.
func zt(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ztBin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// TestAgentsAdmin: zt agents registers, shows, lists and revokes an agent
// with the dev admin's SVID against ztlog dev; an agent's SVID may not list.
func TestAgentsAdmin(t *testing.T) {
	d := startDev(t)
	const id = "spiffe://dev.ztlog.local/agent/new"
	admin := []string{"--server", d.url(), "--svid", d.svid("admin")}
	code, out, stderr := zt(t, append([]string{"agents", "register", "--id", id, "--owner", "team-a",
		"--broker", "spiffe://dev.ztlog.local/broker/demo", "--label", "env=test"}, admin...)...)
	if code != 0 {
		t.Fatalf("register: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "registered "+id+" (log index ") {
		t.Errorf("register printed %q", out)
	}
	var rec api.Agent
	code, out, stderr = zt(t, append([]string{"agents", "show", "--id", id}, admin...)...)
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("show printed no record: %v: %q", err, out)
	}
	if rec.Status != "registered" {
		t.Errorf("show: status %q, want registered", rec.Status)
	}
	if rec.Owner != "team-a" {
		t.Errorf("show: owner %q, want team-a", rec.Owner)
	}
	if rec.Labels["env"] != "test" {
		t.Errorf("show: labels %v, want env=test", rec.Labels)
	}
	code, out, stderr = zt(t, append([]string{"agents", "list"}, admin...)...)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	for _, want := range []string{id, "spiffe://dev.ztlog.local/agent/demo"} {
		if !strings.Contains(out, want) {
			t.Errorf("list does not show %s: %q", want, out)
		}
	}
	if code, out, stderr = zt(t, append([]string{"agents", "revoke", "--id", id}, admin...)...); code != 0 || !strings.HasPrefix(out, "revoked "+id) {
		t.Errorf("revoke: exit %d, %q (%s)", code, out, stderr)
	}
	_, out, _ = zt(t, append([]string{"agents", "show", "--id", id}, admin...)...)
	if json.Unmarshal([]byte(out), &rec) != nil || rec.Status != "revoked" {
		t.Errorf("show after revoke: %q, want status revoked", out)
	}
	code, _, stderr = zt(t, "agents", "list", "--server", d.url(), "--svid", d.svid("agent"))
	if code != exitAgentsFailed {
		t.Errorf("list as an agent: exit %d, want %d", code, exitAgentsFailed)
	}
	if !strings.Contains(stderr, "not_admin") {
		t.Errorf("list as an agent: stderr %q does not say not_admin", stderr)
	}
	if code, _, _ = zt(t, append([]string{"agents", "revoke"}, admin...)...); code != exitUsage {
		t.Errorf("revoke without --id: exit %d, want %d", code, exitUsage)
	}
}

// TestBrokerMetrics: zt broker --metrics-listen serves /healthz and
// /metrics, which count the work it took.
func TestBrokerMetrics(t *testing.T) {
	d := startDev(t)
	baddr, maddr := devproc.FreeAddr(t), devproc.FreeAddr(t)
	p := exec.Command(ztBin, "broker", "--server", d.url(), "--svid", d.svid("broker"), "--listen", baddr, "--metrics-listen", maddr)
	stderr := &devproc.SyncBuffer{}
	p.Stderr = stderr
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "broker ready") {
		if time.Now().After(deadline) {
			t.Fatalf("zt broker did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + maddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"outbox_pending":0`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	r := ztRun(t, d, []string{"--action", "demo.echo", "--resource", "demo://hello", "--broker-url", "https://" + baddr,
		"--broker", "spiffe://dev.ztlog.local/broker/demo"}, "echo", "hi")
	if r.code != 0 {
		t.Fatalf("zt run via the broker: exit %d: %s", r.code, r.stderr)
	}
	_, metrics := get("/metrics")
	if !strings.Contains(metrics, `ztlog_broker_work_requests_total{code="200"} 1`) {
		t.Errorf("/metrics does not count the work: %s", grepLines(metrics, "ztlog_broker"))
	}
	if !strings.Contains(metrics, "ztlog_broker_outbox_pending 0") {
		t.Errorf("/metrics has no outbox gauge: %s", grepLines(metrics, "ztlog_broker"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// zt decide --workload-api takes the agent's identity from the SPIFFE
// Workload API; naming both --svid and --workload-api is a usage error.
func TestDecideWorkloadAPI(t *testing.T) {
	d := startDev(t)
	agentSVID, err := x509svid.Load(d.svid("agent")+".pem", d.svid("agent")+".key")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := spiffebundle.Load(agentSVID.ID.TrustDomain(), filepath.Join(d.dir, "dev", "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	wlDir, _ := os.MkdirTemp("", "wl")
	defer os.RemoveAll(wlDir)
	wl, err := workloadtest.Start(wlDir, agentSVID, sb.X509Bundle(), sb.JWTBundle())
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Stop()
	code, out, stderr := zt(t, "decide", "--server", d.url(), "--workload-api", wl.Addr(), "--action", "demo.echo", "--resource", "demo://hello")
	if code != exitAllow {
		t.Fatalf("zt decide --workload-api: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "ALLOW  demo.echo on demo://hello") {
		t.Errorf("zt decide --workload-api printed %q", out)
	}
	if code, _, _ := zt(t, "decide", "--server", d.url(), "--svid", d.svid("agent"), "--workload-api", wl.Addr(), "--action", "a", "--resource", "r"); code != exitUsage {
		t.Errorf("--svid and --workload-api: exit %d, want %d", code, exitUsage)
	}
}
