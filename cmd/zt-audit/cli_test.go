package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/cmd/internal/clitest"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// zt-audit and zt-witness: --version, -h of every subcommand (exit 0,
// one-word placeholders), suggestions for a mistyped subcommand or flag.
func TestCLIConventions(t *testing.T) {
	dir := t.TempDir()
	audit, witness := buildBin(t, dir, "../zt-audit"), buildBin(t, dir, "../zt-witness")
	for _, b := range []struct{ bin, name string }{{audit, "zt-audit"}, {witness, "zt-witness"}} {
		for _, arg := range []string{"--version", "version"} {
			if r := clitest.Run(t, b.bin, nil, arg); r.Code != 0 || !strings.HasPrefix(r.Stdout, b.name+" ") {
				t.Errorf("%s %s: exit %d, %q", b.name, arg, r.Code, r.Stdout)
			}
		}
	}
	for _, sub := range []string{"verify", "bundle", "audit", "consistency", "monitor", "history", "explore"} {
		clitest.Help(t, audit, sub)
	}
	for _, sub := range []string{"serve", "keygen", "federate"} {
		clitest.Help(t, witness, sub)
	}
	cases := []struct {
		bin  string
		args []string
		want string
	}{
		{audit, []string{"moniter"}, `did you mean "monitor"?`},
		{audit, []string{"audit", "--polcy", "x"}, "did you mean --policy?"},
		{audit, []string{"explore", "--policy", "x"}, "--log is required"},
		{audit, []string{"explore", "--log", "x"}, "--policy is required"},
		{witness, []string{"serv"}, `did you mean "serve"?`},
		{witness, []string{"serve", "--stat", "x"}, "did you mean --state?"},
	}
	for _, c := range cases {
		r := clitest.Run(t, c.bin, nil, c.args...)
		if r.Code != 2 {
			t.Errorf("%q: exit %d, want 2", c.args, r.Code)
		}
		if !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%q: stderr %q does not contain %q", c.args, r.Stderr, c.want)
		}
	}
}

// zt-audit monitor: a heartbeat line while all is well, /healthz with the
// size it checked, /metrics with that size.
func TestMonitorHeartbeatAndEndpoints(t *testing.T) {
	bin := buildBin(t, t.TempDir(), "../zt-audit")
	k := newLogKey(t, "example.com/zt-audit-monitor-ops")
	logDir := writeScenarioLog(t, k, 20, nil)
	addr := devproc.FreeAddr(t)
	p := exec.Command(bin, "monitor", "--log", logDir, "--policy", k.policy, "--state", t.TempDir(),
		"--interval", "100ms", "--heartbeat", "200ms", "--listen", addr)
	stderr := &devproc.SyncBuffer{}
	p.Stderr = stderr
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "heartbeat: ") {
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat line: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "example.com/zt-audit-monitor-ops size ") {
		t.Errorf("heartbeat does not name the log and size: %s", stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status string `json:"status"`
		Detail struct {
			CheckedSize uint64 `json:"checked_size"`
		} `json:"detail"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: HTTP %d, want 200", resp.StatusCode)
	}
	if h.Detail.CheckedSize == 0 {
		t.Fatalf("/healthz: checked_size 0, want the log's size")
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("ztlog_monitor_checked_size %d", h.Detail.CheckedSize); !strings.Contains(string(b), want) {
		t.Errorf("/metrics has no %q", want)
	}
	if !strings.Contains(string(b), "ztlog_monitor_last_check_timestamp_seconds ") {
		t.Error("/metrics has no last check time")
	}
}

// Verifier messages name library options; zt-audit shows its flags.
func TestHintNamesFlags(t *testing.T) {
	got := hint("no SPIFFE roots: pin them (Options.Roots); raise Options.MaxOpen")
	if want := "no SPIFFE roots: pin them (--spiffe-bundle FILE); raise --max-open"; got != want {
		t.Errorf("hint = %q, want %q", got, want)
	}
}
