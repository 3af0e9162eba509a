package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/testutil/workloadtest"
)

var ztBin, ztlogBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv(heldUpstreamEnv); dir != "" {
		os.Exit(serveHeldUpstream(dir))
	}
	devproc.MainWithBinaries(m, map[*string]string{&ztBin: ".", &ztlogBin: "../ztlog"})
}

// dev is a running `ztlog dev`.
type dev struct {
	dir, addr string
}

func (d *dev) url() string          { return "https://" + d.addr }
func (d *dev) svid(n string) string { return filepath.Join(d.dir, "dev", n) }

func startDev(t *testing.T) *dev {
	t.Helper()
	p := devproc.Start(t, ztlogBin, t.TempDir())
	return &dev{dir: p.Dir, addr: p.Addr}
}

type run struct {
	code           int
	stdout, stderr string
	report         runReport
}

func ztRun(t *testing.T, d *dev, extra []string, argv ...string) run {
	t.Helper()
	return ztRunIn(t, d, nil, extra, argv...)
}

// ztRunIn is ztRun with stdin.
func ztRunIn(t *testing.T, d *dev, stdin io.Reader, extra []string, argv ...string) run {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	args := append([]string{"run", "--server", d.url(), "--svid", d.svid("agent"), "--model", "anthropic/claude-sonnet-4",
		"--report", report}, extra...)
	args = append(append(args, "--"), argv...)
	cmd := exec.Command(ztBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	r := run{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(report); err == nil {
		json.Unmarshal(b, &r.report)
	}
	return r
}

// readEntry reads an entry through the public read API.
func readEntry(t *testing.T, d *dev, i uint64) entry.Entry { return devproc.ReadEntry(t, d.addr, i) }

// TestRunEndToEnd is issue 5's done-when, through the real binaries: from
// ztlog dev, zt run demo.echo leaves a decision with a verified runtime
// attestation and a linked result; a read outside the grant and a socket
// under a blocked network fail and their results say so; a deny runs
// nothing.
func TestRunEndToEnd(t *testing.T) {
	d := startDev(t)
	r := ztRun(t, d, []string{"--action", "demo.echo", "--resource", "demo://hello"}, "echo", "hi")
	if r.code != 0 || r.stdout != "hi\n" || r.report.ResultIndex == nil {
		t.Fatalf("echo: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	dec := readEntry(t, d, r.report.DecisionIndex).(*entry.Decision)
	if dec.Effect != entry.Allow || dec.Attestation == nil || dec.Attestation.Claims["model.name"] != "claude-sonnet-4" ||
		dec.Attestation.Claims["signer"] != "spiffe://dev.ztlog.local/agent/demo" || dec.CapabilitiesDigest == "" ||
		dec.Attestation.Claims["sandbox.capabilities"] != dec.CapabilitiesDigest {
		t.Fatalf("decision %+v", dec)
	}
	res := readEntry(t, d, *r.report.ResultIndex).(*entry.Result)
	if res.DecisionIndex != r.report.DecisionIndex || res.Outcome != "ok" || res.ActionDigest != dec.ActionDigest ||
		res.Broker != "spiffe://dev.ztlog.local/broker/demo" || res.Statement.Claims["sandbox.kind"] != "landlock+bwrap" {
		t.Fatalf("result %+v", res)
	}

	// Outside the grant: /etc is not in the default manifest.
	r = ztRun(t, d, []string{"--action", "demo.cat", "--resource", "demo://etc"}, "cat", "/etc/hostname")
	if r.code != 1 || !strings.Contains(r.stderr, "Permission denied") || r.report.ResultIndex == nil {
		t.Fatalf("cat outside the grant: exit %d, stderr %s", r.code, r.stderr)
	}
	if res := readEntry(t, d, *r.report.ResultIndex).(*entry.Result); res.Outcome != "failed" || res.ExitStatus == nil || *res.ExitStatus != 1 {
		t.Fatalf("result of the denied read %+v", res)
	}

	// A socket under the blocked network of the default manifest.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r = ztRun(t, d, []string{"--action", "demo.connect", "--resource", "demo://net"}, "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", ln.Addr().(*net.TCPAddr).Port))
	if r.code != 1 || r.report.ResultIndex == nil {
		t.Fatalf("connect under a blocked network: exit %d, stderr %s", r.code, r.stderr)
	}
	if res := readEntry(t, d, *r.report.ResultIndex).(*entry.Result); res.Outcome != "failed" {
		t.Fatalf("result of the denied connect %+v", res)
	}

	// A deny: 77, nothing ran.
	marker := filepath.Join(t.TempDir(), "ran")
	r = ztRun(t, d, []string{"--action", "aws.ec2.terminate_instances", "--resource", "i-demo"}, "touch", marker)
	if _, err := os.Stat(marker); r.code != exitRunDenied || err == nil || r.report.Decision != "deny" || r.report.ResultIndex != nil {
		t.Fatalf("deny: exit %d, stderr %s", r.code, r.stderr)
	}

	// An unvetted model: denied by the policy on the verified attestation.
	r = ztRun(t, d, []string{"--action", "demo.echo", "--resource", "demo://hello", "--model", "acme/unvetted"}, "touch", marker)
	if r.code != exitRunDenied || !strings.Contains(r.stderr, "attestation.model_not_allowed") {
		t.Fatalf("unvetted model: exit %d, stderr %s", r.code, r.stderr)
	}

	// No service: 69, nothing ran.
	dead := &dev{dir: d.dir, addr: devproc.FreeAddr(t)}
	r = ztRun(t, dead, []string{"--action", "demo.echo", "--resource", "demo://hello", "--timeout", "2s"}, "touch", marker)
	if _, err := os.Stat(marker); r.code != exitRunNoDecision || err == nil {
		t.Fatalf("no service: exit %d, stderr %s", r.code, r.stderr)
	}

	// The agent's identity from the SPIFFE Workload API.
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
	cmd := exec.Command(ztBin, "run", "--server", d.url(), "--workload-api", wl.Addr(), "--broker-svid", d.svid("broker"),
		"--bundle", filepath.Join(d.dir, "dev", "bundle.pem"), "--model", "anthropic/claude-sonnet-4",
		"--action", "demo.echo", "--resource", "demo://hello", "--", "echo", "workload")
	var wlErr bytes.Buffer
	cmd.Stderr = &wlErr
	if out, err := cmd.Output(); err != nil || string(out) != "workload\n" {
		t.Fatalf("zt run --workload-api: %v %q %s", err, out, wlErr.String())
	}

	// --unsafe-no-sandbox reads what the sandbox denied, and says so.
	r = ztRun(t, d, []string{"--action", "demo.cat", "--resource", "demo://etc", "--unsafe-no-sandbox"}, "cat", "/etc/hostname")
	if r.code != 0 || r.report.Sandbox != "none" {
		t.Fatalf("unsafe: exit %d sandbox %q stderr %s", r.code, r.report.Sandbox, r.stderr)
	}
}

// TestBrokerProcess runs `zt broker` as a process: zt run hands it work;
// a replayed receipt is refused, also after the broker is killed and
// restarted; a tampered receipt is refused; nothing of those runs.
func TestBrokerProcess(t *testing.T) {
	d := startDev(t)
	baddr := devproc.FreeAddr(t)
	startBroker := func() *exec.Cmd {
		p := exec.Command(ztBin, "broker", "--server", d.url(), "--svid", d.svid("broker"), "--listen", baddr)
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
		return p
	}
	p := startBroker()
	r := ztRun(t, d, []string{"--action", "demo.echo", "--resource", "demo://hello", "--broker-url", "https://" + baddr,
		"--broker", "spiffe://dev.ztlog.local/broker/demo"}, "echo", "via", "broker")
	if r.code != 0 || r.stdout != "via broker\n" || r.report.ResultIndex == nil {
		t.Fatalf("zt run via zt broker: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}

	// The agent side, with the SDK: one receipt, handed three times.
	src, err := client.FromFiles(d.svid("agent"), filepath.Join(d.dir, "dev", "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{URL: d.url(), SVID: src, Bundles: src, Broker: "spiffe://dev.ztlog.local/broker/demo"})
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	m := capability.Strict(filepath.Dir(marker), "touch")
	argv := []string{"touch", marker}
	ad, _ := broker.ArgsDigest(argv)
	dec, err := c.Decide(context.Background(), client.Request{Action: "demo.touch", Resource: "demo://x", ArgsDigest: ad, Capabilities: m})
	if err != nil || !dec.Allow {
		t.Fatalf("decide: %v", err)
	}
	caps, _ := json.Marshal(m)
	bid, _ := identity.FromFiles(identity.Files{Cert: d.svid("agent") + ".pem", Key: d.svid("agent") + ".key", Bundle: filepath.Join(d.dir, "dev", "bundle.pem")})
	svid, _ := bid.GetX509SVID()
	bc := &broker.Client{URL: "https://" + baddr, HTTP: &http.Client{Transport: &http.Transport{
		TLSClientConfig: identity.ClientTLS(bid, bid, svidID("spiffe://dev.ztlog.local/broker/demo"), svid.ID.TrustDomain())}}}
	work := &broker.WorkRequest{Receipt: dec.Token, Action: "demo.touch", Resource: "demo://x", Argv: argv, Capabilities: caps}

	tampered := *work
	tampered.Receipt = strings.Replace(work.Receipt, ".", ".e30", 1)
	if _, err := bc.Submit(context.Background(), &tampered); !refusedWith(err, broker.RefuseReceipt) {
		t.Fatalf("tampered receipt: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a tampered receipt ran")
	}
	if resp, err := bc.Submit(context.Background(), work); err != nil || resp.Outcome != "ok" {
		t.Fatalf("first hand-off: %v", err)
	}
	os.Remove(marker)
	if _, err := bc.Submit(context.Background(), work); !refusedWith(err, broker.RefuseReplayed) {
		t.Fatalf("replay: %v", err)
	}
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
	startBroker()
	if _, err := bc.Submit(context.Background(), work); !refusedWith(err, broker.RefuseReplayed) {
		t.Fatalf("replay after kill -9 and restart: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a replayed receipt ran")
	}
}

func svidID(s string) spiffeid.ID { return spiffeid.RequireFromString(s) }

func refusedWith(err error, code string) bool {
	ref, ok := broker.AsRefused(err)
	return ok && ref.Code == code
}

// Stdin too large for a remote broker's work request is refused before
// deciding: exit 64, a message naming the limit, nothing committed. (It
// used to be cut at the limit without a word, and the work ran on the
// cut input.)
func TestRunRemoteStdinTooLarge(t *testing.T) {
	d := startDev(t)
	deny := []string{"--action", "aws.ec2.terminate_instances", "--resource", "i-demo"}
	before := ztRun(t, d, deny, "true")
	if before.code != exitRunDenied {
		t.Fatalf("the bracketing deny: exit %d, stderr %s", before.code, before.stderr)
	}
	big := bytes.NewReader(make([]byte, maxRemoteStdin+1))
	r := ztRunIn(t, d, big, []string{"--action", "demo.echo", "--resource", "demo://hello",
		"--broker-url", "https://" + devproc.FreeAddr(t), "--broker", "spiffe://dev.ztlog.local/broker/demo"}, "cat")
	if r.code != exitRunUsage {
		t.Fatalf("stdin of %d bytes to a remote broker: exit %d, want %d; stderr %s", maxRemoteStdin+1, r.code, exitRunUsage, r.stderr)
	}
	if want := fmt.Sprintf("stdin is larger than %d bytes", maxRemoteStdin); !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q does not say %q", r.stderr, want)
	}
	after := ztRun(t, d, deny, "true")
	if after.report.DecisionIndex != before.report.DecisionIndex+1 {
		t.Fatalf("the deny after the refused run is at index %d, want %d: something was committed in between",
			after.report.DecisionIndex, before.report.DecisionIndex+1)
	}
}
