package faultsuite

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
)

var ztlogBin, witnessBin string

func TestMain(m *testing.M) {
	devproc.MainWithBinaries(m, map[*string]string{&ztlogBin: "../../cmd/ztlog", &witnessBin: "../../cmd/zt-witness"})
}

// dev is a running `ztlog dev`, possibly under a wrapper (prlimit).
type dev struct {
	t      *testing.T
	dir    string
	addr   string
	cmd    *exec.Cmd
	stderr *devproc.SyncBuffer
	done   chan struct{}
	client *http.Client
	// acked are the decisions answered 200 with a receipt: index -> leaf hash.
	mu    sync.Mutex
	acked map[uint64]string
}

func startDev(t *testing.T, dir string, wrapper []string, args ...string) *dev {
	t.Helper()
	d := &dev{t: t, dir: dir, addr: devproc.FreeAddr(t), stderr: &devproc.SyncBuffer{}, done: make(chan struct{}), acked: map[uint64]string{}}
	argv := append(append([]string{}, wrapper...), ztlogBin, "dev", "--data-dir", dir, "--listen", d.addr, "--checkpoint-interval", "100ms")
	d.cmd = exec.Command(argv[0], append(argv[1:], args...)...)
	out, _ := d.cmd.StdoutPipe()
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Stop with") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("ztlog dev did not start:\n%s", d.stderr.String())
	}
	go io.Copy(io.Discard, out)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "dev", "agent.pem"), filepath.Join(dir, "dev", "agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(dir, "dev", "bundle.pem"))
	pool.AppendCertsFromPEM(ca)
	d.client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, MaxIdleConnsPerHost: 4}}
	return d
}

func (d *dev) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// outcome is one decision request's fate.
type outcome struct {
	status int // 0: no answer (connection refused, reset, timeout)
	resp   api.ActionResponse
	err    error
	body   string
}

// decide asks for action; a 200 must carry a receipt and a log index, and
// is recorded as acknowledged.
func (d *dev) decide(action string) outcome {
	req, _ := http.NewRequest("POST", "https://"+d.addr+"/v1/actions", strings.NewReader(`{"action":"`+action+`","resource":"fault://r"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o := outcome{status: resp.StatusCode, body: string(b)}
	json.Unmarshal(b, &o.resp)
	if o.status == 200 {
		if o.resp.Receipt == "" || o.resp.Log.LeafHash == "" {
			d.t.Errorf("an allow without its evidence (receipt, log index): %s", b)
		}
		d.mu.Lock()
		d.acked[o.resp.Log.Index] = o.resp.Log.LeafHash
		d.mu.Unlock()
	}
	return o
}

// answersAgain waits until a demo.echo decision is an allow again.
func (d *dev) answersAgain(within time.Duration, action string) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	var last outcome
	for time.Now().Before(deadline) {
		if last = d.decide(action); last.status == 200 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.t.Fatalf("%s is not allowed again within %s after the fault ended: %d %v %s\n%s", action, within, last.status, last.err, last.body, tail(d.stderr.String(), 2000))
}

// nothingLost checks that every acknowledged allow is in the log, at its
// index with its leaf hash, under a published checkpoint.
func (d *dev) nothingLost() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.acked) == 0 {
		d.t.Fatal("no allow was acknowledged at all")
	}
	for idx, lh := range d.acked {
		var got string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			resp, err := http.Get(fmt.Sprintf("http://%s/v1/entries/%d", d.addr, idx))
			if err != nil {
				continue
			}
			var e struct {
				Leaf string `json:"leaf"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				leaf, _ := base64.StdEncoding.DecodeString(e.Leaf)
				got = base64.StdEncoding.EncodeToString(ztlog.LeafHash(leaf))
				break
			}
		}
		if got != lh {
			d.t.Errorf("acknowledged decision %d: leaf hash in the log %q, acknowledged %q", idx, got, lh)
		}
	}
}

func (d *dev) healthz() int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + d.addr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestFaultFDExhaustion: under `prlimit --nofile=256`, 600 idle connections
// are opened while decisions are asked. The connection caps keep a reserve
// of descriptors for storage: ztlog neither wedges its listener nor crashes
// (Tessera panics when it cannot open its lock file), every allow it
// answers carries its evidence, and once the connections close it answers
// again (issue 18 findings 1 and 2).
func TestFaultFDExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed; the fd-exhaustion fault needs it")
	}
	d := startDev(t, t.TempDir(), []string{prlimit, "--nofile=256:256"})
	d.answersAgain(10*time.Second, "demo.echo")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			d.decide("demo.echo")
		}
	}()
	var conns []net.Conn
	for i := 0; i < 600; i++ {
		c, err := net.DialTimeout("tcp", d.addr, time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second) // decisions under the flood
	close(stop)
	wg.Wait()
	if !d.alive() {
		t.Fatalf("ztlog died under fd exhaustion:\n%s", tail(d.stderr.String(), 3000))
	}
	if !strings.Contains(d.stderr.String(), "connection cap reached") {
		t.Errorf("no log line says a connection cap was reached")
	}
	if n := strings.Count(d.stderr.String(), "connection cap reached"); n > 4 {
		t.Errorf("%d cap log lines in a few seconds, want them rate-limited", n)
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.healthz() != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz does not answer 5s after the connections closed (the listener is wedged)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.answersAgain(10*time.Second, "demo.echo")
	if strings.Contains(d.stderr.String(), "panic") {
		t.Errorf("a panic in the logs:\n%s", tail(d.stderr.String(), 2000))
	}
	d.nothingLost()
}

// TestFaultSlowHeaders: a client that trickles its headers is cut off at
// the header deadline, before any identity check, and the service goes on.
func TestFaultSlowHeaders(t *testing.T) {
	d := startDev(t, t.TempDir(), nil, "--read-header-timeout", "1s")
	d.answersAgain(10*time.Second, "demo.echo")
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(d.dir, "dev", "bundle.pem"))
	pool.AppendCertsFromPEM(ca)
	c, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "POST /v1/actions HTTP/1.1\r\nHost: x\r\n")
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, c)
		closed <- time.Since(start)
	}()
	for i := 0; i < 30; i++ {
		select {
		case took := <-closed:
			if took > 3*time.Second {
				t.Errorf("slow headers cut after %s, want about the 1s header deadline", took)
			}
			d.answersAgain(5*time.Second, "demo.echo")
			d.nothingLost()
			return
		case <-time.After(200 * time.Millisecond):
			fmt.Fprintf(c, "X-Slow-%d: y\r\n", i)
		}
	}
	t.Fatal("a client trickling its headers for 6s is still connected (header deadline 1s)")
}

// TestFaultSlowBody: a client that declares a body and trickles it is cut
// off at the body deadline; nothing is committed for it (issue 18 finding 3).
func TestFaultSlowBody(t *testing.T) {
	d := startDev(t, t.TempDir(), nil, "--body-read-timeout", "1s")
	d.answersAgain(10*time.Second, "demo.echo")
	cert, _ := tls.LoadX509KeyPair(filepath.Join(d.dir, "dev", "agent.pem"), filepath.Join(d.dir, "dev", "agent.key"))
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(d.dir, "dev", "bundle.pem"))
	pool.AppendCertsFromPEM(ca)
	c, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"action":"demo.echo","resource":"slow://body"}`
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/actions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		answer <- string(b)
	}()
	for i := 0; i < len(body); i++ {
		select {
		case a := <-answer:
			took := time.Since(start)
			if took > 3*time.Second {
				t.Errorf("a trickled body cut after %s, want about the 1s body deadline", took)
			}
			if strings.HasPrefix(a, "HTTP/1.1 200") {
				t.Fatalf("a trickled body was allowed: %s", a)
			}
			d.answersAgain(5*time.Second, "demo.echo")
			d.nothingLost()
			if strings.Contains(d.stderr.String(), "slow://body") {
				t.Errorf("the trickled request reached a decision")
			}
			return
		case <-time.After(200 * time.Millisecond):
			c.Write([]byte{body[i]})
		}
	}
	t.Fatal("a body trickled for its whole length (about 10s) was read to the end (body deadline 1s)")
}

// witnessProc is a zt-witness process on a fixed address.
type witnessProc struct {
	t         *testing.T
	addr, dir string
	cfg, key  string
	cmd       *exec.Cmd
	done      chan struct{}
}

func (w *witnessProc) start() {
	w.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		w.cmd = exec.Command(witnessBin, "serve", "--config", w.cfg, "--key", w.key, "--state", filepath.Join(w.dir, "state"), "--listen", w.addr)
		w.cmd.Stdout, w.cmd.Stderr = io.Discard, io.Discard
		if err = w.cmd.Start(); err != nil {
			w.t.Fatal(err)
		}
		w.done = make(chan struct{})
		go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(w.cmd, w.done)
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get("http://" + w.addr + "/healthz"); err == nil {
				resp.Body.Close()
				return
			}
			select {
			case <-w.done:
				deadline = time.Time{} // exited (port still held): try again
			default:
			}
		}
		w.cmd.Process.Kill()
		<-w.done
		time.Sleep(100 * time.Millisecond)
	}
	w.t.Fatalf("zt-witness did not start on %s", w.addr)
}

func (w *witnessProc) kill() {
	w.cmd.Process.Kill()
	<-w.done
}

// TestFaultWitnessLoss: under a witness policy, the witness dies. A
// witnessed action (the example policy's deploy.production) is never
// allowed without a cosigned checkpoint: it is a 503 witness_timeout or a
// committed deny naming the witness. A sequenced action goes on, as the
// README documents. When the witness is back, witnessed allows resume,
// their receipts verifying offline, and every acknowledged allow is in the
// log (issue 18 finding 4).
func TestFaultWitnessLoss(t *testing.T) {
	dir := t.TempDir()
	devDir := filepath.Join(dir, "dev")
	os.MkdirAll(devDir, 0o700)
	out, err := exec.Command(ztlogBin, "keygen", "--origin", "localhost/ztlog-dev", "--out", filepath.Join(devDir, "log.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(out))
	wdir := t.TempDir()
	w := &witnessProc{t: t, addr: devproc.FreeAddr(t), dir: wdir, cfg: filepath.Join(wdir, "witness.json"), key: filepath.Join(wdir, "w1.key")}
	os.WriteFile(w.cfg, []byte(fmt.Sprintf(`{"logs":[{"origin":"localhost/ztlog-dev","verifier_key":%q}]}`, vkey)), 0o644)
	out, err = exec.Command(witnessBin, "keygen", "--name", "witness.example/w1", "--out", w.key).Output()
	if err != nil {
		t.Fatal(err)
	}
	wvkey := strings.TrimSpace(string(out))
	w.start()
	t.Cleanup(func() { w.cmd.Process.Kill() })
	policyText := fmt.Sprintf("log %s\nwitness w1 %s http://%s/\nquorum w1\n", vkey, wvkey, w.addr)
	policyFile := filepath.Join(dir, "witness.policy")
	os.WriteFile(policyFile, []byte(policyText), 0o644)
	pol, err := trustpolicy.Parse([]byte(policyText))
	if err != nil {
		t.Fatal(err)
	}
	d := startDev(t, dir, nil, "--witness-policy", policyFile, "--witness-wait", "2s", "--witness-timeout", "1s")
	var wk struct {
		JWKS jose.JSONWebKeySet `json:"receipt_jwks"`
	}
	resp, err := http.Get("http://" + d.addr + "/.well-known/ztlog")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&wk)
	resp.Body.Close()
	witnessedAllow := func(when string) {
		t.Helper()
		o := d.decide("deploy.production")
		if o.status != 200 {
			t.Fatalf("%s: deploy.production %d %v %s, want 200", when, o.status, o.err, o.body)
		}
		c, err := receipt.Verify(o.resp.Receipt, &wk.JWKS, receipt.Expect{Issuer: "localhost/ztlog-dev", Audience: "spiffe://dev.ztlog.local/broker/demo",
			Now: time.Now(), Witnesses: pol})
		if err != nil {
			t.Fatalf("%s: the witnessed receipt does not verify offline under the trust policy: %v", when, err)
		}
		if c.Assurance != receipt.Witnessed {
			t.Errorf("%s: receipt assurance %q, want witnessed", when, c.Assurance)
		}
	}
	d.answersAgain(10*time.Second, "demo.echo")
	witnessedAllow("witness up")

	w.kill()
	refusals := 0
	for i := 0; i < 4; i++ {
		o := d.decide("deploy.production")
		switch {
		case o.status == 200:
			t.Fatalf("witness down: deploy.production allowed: %s", o.body)
		case o.status == 503 && strings.Contains(o.body, "witness_timeout"):
			refusals++
		case o.status == 403 && strings.Contains(o.body, "assurance.quorum_lost"):
			if !strings.Contains(o.body, "w1") {
				t.Errorf("the committed deny does not name the missing witness: %s", o.body)
			}
			refusals++
		default:
			t.Errorf("witness down: deploy.production %d %v %s, want 503 witness_timeout or 403 assurance.quorum_lost", o.status, o.err, o.body)
		}
	}
	if refusals != 4 {
		t.Errorf("%d of 4 witnessed requests refused as the witness's loss, want 4", refusals)
	}
	// Sequenced actions go on, committed (witnessed later).
	if o := d.decide("demo.echo"); o.status != 200 {
		t.Errorf("witness down: demo.echo (sequenced) %d %s, want 200", o.status, o.body)
	}
	if !d.alive() {
		t.Fatal("ztlog died when the witness did")
	}

	w.start()
	d.answersAgain(20*time.Second, "deploy.production")
	witnessedAllow("witness back")
	d.nothingLost()
}

// TestFaultDiskFull: the data directory is a 16 MiB tmpfs that fills up.
// No allow is answered without its entry, stderr is not flooded, the
// process survives, and once space is freed it allows again with every
// acknowledged allow still in the log (issue 18 finding 7).
func TestFaultDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the full-disk fault mounts a small tmpfs, which needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (the full-disk fault needs one): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	d := startDev(t, filepath.Join(mnt, "ztlog"), nil)
	d.answersAgain(10*time.Second, "demo.echo")
	for i := 0; i < 5; i++ {
		d.decide("demo.echo")
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	before := len(d.stderr.String())
	start := time.Now()
	requests := 0
	for time.Since(start) < 4*time.Second {
		d.decide("demo.echo") // a 200 is recorded and must be in the log later
		requests++
	}
	// Access lines are one per request; everything else is the storage
	// warnings, which must not repeat per write.
	lines := 0
	for _, l := range strings.Split(d.stderr.String()[before:], "\n") {
		if l != "" && !strings.Contains(l, `"msg":"request"`) {
			lines++
		}
	}
	if !d.alive() {
		t.Fatalf("ztlog died on a full disk:\n%s", tail(d.stderr.String(), 3000))
	}
	if lines > 40 {
		t.Errorf("%d log lines besides the access lines in 4s of full disk (%d requests), want the repeated warnings rate-limited:\n%s", lines, requests, tail(d.stderr.String(), 1500))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d.answersAgain(15*time.Second, "demo.echo")
	d.nothingLost()
}
