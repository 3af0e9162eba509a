package explorer_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
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
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/verifier/explorer"
)

var (
	ztlogBin, ztBin, auditBin string
	screenshots               = flag.String("screenshots", "", "write PNG screenshots of the main pages to this `directory` (make screenshots)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	devproc.MainWithBinaries(m, map[*string]string{&ztlogBin: "../../cmd/ztlog", &ztBin: "../../cmd/zt", &auditBin: "../../cmd/zt-audit"})
}

// browser is one headless Debian chromium, shared by the subtests.
type browser struct{ ctx context.Context }

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium; .ci/deps.d/chromium.sh installs it): the explorer's browser tests need it")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// open loads url in a fresh document and waits until the page has
// rendered and verified everything (main[data-ready="1"]).
func (b *browser) open(t *testing.T, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(u),
		chromedp.WaitVisible(chromedp.CSS(`#main[data-ready="1"]`))); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
}

// evalJS evaluates js in the page (awaiting a promise) and decodes its value.
func evalJS[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// checks returns each check the page shows: name -> PASS or FAIL.
func (b *browser) checks(t *testing.T) map[string]string {
	t.Helper()
	return evalJS[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll("[data-check]")].map(e => [e.dataset.check, e.dataset.status]))`)
}

func (b *browser) text(t *testing.T, selector string) string {
	t.Helper()
	return evalJS[string](t, b, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, selector))
}

func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantChecks asserts each named check's status, and that the page shows no
// other check.
func wantChecks(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for name, status := range want {
		if got[name] != status {
			t.Errorf("check %q = %q, want %s", name, got[name], status)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected check %q = %s", name, got[name])
		}
	}
}

// devLog is a running ztlog dev with a few decisions and a broker result.
type devLog struct {
	dev                                 *devproc.Dev
	allow, result, deny, original, last uint64
	agent                               string
}

func decide(t *testing.T, d *devproc.Dev, action, resource string) uint64 {
	t.Helper()
	cmd := exec.Command(ztBin, "decide", "--server", d.URL(), "--svid", d.DevFile("agent"), "--action", action, "--resource", resource, "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("zt decide %s: %v\n%s\nztlog dev:\n%s", action, err, stderr.String(), d.Stderr.String())
	}
	var ans struct {
		Log struct{ Index uint64 } `json:"log"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		t.Fatalf("zt decide %s: %v: %s", action, err, out)
	}
	return ans.Log.Index
}

func startDevLog(t *testing.T) *devLog {
	d := devproc.Start(t, ztlogBin, t.TempDir())
	l := &devLog{dev: d, agent: "spiffe://dev.ztlog.local/agent/demo"}
	l.original = decide(t, d, "demo.echo", "demo://original")
	l.deny = decide(t, d, "aws.ec2.terminate_instances", "i-demo")
	report := filepath.Join(t.TempDir(), "run.json")
	run := exec.Command(ztBin, "run", "--server", d.URL(), "--svid", d.DevFile("agent"), "--model", "anthropic/claude-sonnet-4",
		"--action", "demo.echo", "--resource", "demo://hello", "--report", report, "--", "echo", "hi")
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("zt run: %v\n%s", err, out)
	}
	var rep struct {
		DecisionIndex uint64  `json:"decision_index"`
		ResultIndex   *uint64 `json:"result_index"`
	}
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("zt run report: %v: %s", err, b)
	}
	if rep.ResultIndex == nil {
		t.Fatalf("zt run committed no result: %s", b)
	}
	l.allow, l.result = rep.DecisionIndex, *rep.ResultIndex
	l.last = decide(t, d, "demo.echo", "demo://after")
	devproc.ReadEntry(t, d.Addr, l.last) // published
	return l
}

// explore starts `zt-audit explore` and returns its base URL.
func explore(t *testing.T, logSpec, policy string) string {
	t.Helper()
	addr := devproc.FreeAddr(t)
	cmd := exec.Command(auditBin, "explore", "--log", logSpec, "--policy", filepath.Base(policy), "--listen", addr)
	cmd.Dir = filepath.Dir(policy) // the page names the policy file as given
	stdout, _ := cmd.StdoutPipe()
	var stderr devproc.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufioFirstLines(stdout, 2)
	if !strings.Contains(line, "http://"+addr+"/ui/") {
		t.Fatalf("zt-audit explore did not print its URL: %q\n%s", line, stderr.String())
	}
	return "http://" + addr
}

func bufioFirstLines(r io.Reader, n int) (string, error) {
	var out bytes.Buffer
	buf := make([]byte, 1)
	for lines := 0; lines < n; {
		if _, err := r.Read(buf); err != nil {
			return out.String(), err
		}
		out.Write(buf)
		if buf[0] == '\n' {
			lines++
		}
	}
	go io.Copy(io.Discard, r)
	return out.String(), nil
}

// offline serves the explorer in-process for the log at logURL under the
// policy text, on 127.0.0.1.
func offline(t *testing.T, logURL string, policy []byte) string {
	t.Helper()
	h, err := explorer.Offline(context.Background(), explorer.OfflineConfig{Log: logURL, TrustPolicy: policy, TrustSource: "test policy"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// tamperProxy serves the dev log's read API with the responses whose path
// starts with prefix altered by alter.
func tamperProxy(t *testing.T, d *devproc.Dev, prefix string, alter func([]byte) []byte) string {
	t.Helper()
	target, _ := url.Parse("http://" + d.Addr)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Header.Del("Accept-Encoding") },
		ModifyResponse: func(resp *http.Response) error {
			if !strings.HasPrefix(resp.Request.URL.Path, prefix) || resp.StatusCode != http.StatusOK {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			b = alter(b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// witnessKey is a cosignature/v1 verifier key for a fresh Ed25519 key.
func witnessKey(t *testing.T, name string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte{0x04}, pub...)
	h := sha256.Sum256(append([]byte(name+"\n"), raw...))
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h[:4]), base64.StdEncoding.EncodeToString(raw))
}

func TestExplorerInBrowser(t *testing.T) {
	b := newBrowser(t)
	l := startDevLog(t)
	trust := l.dev.DevFile("trust.policy")
	policyText, err := os.ReadFile(trust)
	if err != nil {
		t.Fatal(err)
	}
	if *screenshots != "" {
		if err := os.MkdirAll(*screenshots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := explore(t, "http://"+l.dev.Addr, trust)
	all := map[string]string{"checkpoint signature": "PASS", "witness cosignatures": "PASS"}
	historyAll := map[string]string{"checkpoint signature": "PASS", "witness cosignatures": "PASS", "index checkpoint": "PASS",
		"map proof": "PASS", "completeness": "PASS", "log inclusion": "PASS", "entries belong to the key": "PASS"}
	entryAll := map[string]string{"checkpoint signature": "PASS", "witness cosignatures": "PASS", "leaf hash": "PASS", "inclusion proof": "PASS"}

	t.Run("checkpoint vectors", func(t *testing.T) {
		b.open(t, base+"/ui/#/trust")
		checkpointVectors(t, b)
	})

	t.Run("history vectors", func(t *testing.T) {
		historyVectors(t, b)
	})

	t.Run("log page", func(t *testing.T) {
		b.open(t, base+"/ui/#/")
		wantChecks(t, b.checks(t), all)
		if got := b.text(t, `[data-witness="dev"]`); !strings.Contains(got, "cosigned at") {
			t.Errorf("witness row = %q, want the dev witness's cosignature time", got)
		}
		failed := evalJS[int](t, b, `document.querySelectorAll('table.entries [data-verified="FAIL"]').length`)
		if failed != 0 {
			t.Errorf("%d latest entries fail to verify", failed)
		}
		points := evalJS[string](t, b, `(document.querySelector("svg.growth") || {dataset: {}}).dataset.points || ""`)
		if points == "" {
			t.Error("no size-over-time chart")
		}
		b.screenshot(t, "log")
	})

	t.Run("search by agent", func(t *testing.T) {
		b.open(t, base+"/ui/#/search?agent="+url.QueryEscape(l.agent))
		wantChecks(t, b.checks(t), all)
		rows := evalJS[[]uint64](t, b, `[...document.querySelectorAll("table.entries tr[data-index]")].map(r => Number(r.dataset.index))`)
		for _, want := range []uint64{l.original, l.deny, l.allow, l.last} {
			if !contains(rows, want) {
				t.Errorf("search for %s: rows %v lack decision %d", l.agent, rows, want)
			}
		}
		if !contains(rows, l.result) {
			t.Errorf("search for %s: rows %v lack the broker result %d of decision %d", l.agent, rows, l.result, l.allow)
		}
		failed := evalJS[int](t, b, `document.querySelectorAll('table.entries [data-verified="FAIL"]').length`)
		if failed != 0 {
			t.Errorf("%d hits fail to verify", failed)
		}
		b.screenshot(t, "search")
	})

	t.Run("search by action and time", func(t *testing.T) {
		from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		b.open(t, base+"/ui/#/search?action=aws.ec2.terminate_instances&from="+from)
		rows := evalJS[[]uint64](t, b, `[...document.querySelectorAll("table.entries tr[data-index]")].map(r => Number(r.dataset.index))`)
		if len(rows) != 1 || rows[0] != l.deny {
			t.Errorf("rows %v, want only the deny %d", rows, l.deny)
		}
	})

	t.Run("entry page", func(t *testing.T) {
		b.open(t, fmt.Sprintf("%s/ui/#/entry/%d", base, l.allow))
		wantChecks(t, b.checks(t), entryAll)
		if got := b.text(t, "[data-decision]"); got != "allow" {
			t.Errorf("decision = %q, want allow", got)
		}
		if got := b.text(t, "#attestation"); !strings.Contains(got, "anthropic/claude-sonnet-4") {
			t.Errorf("attestation = %q, want the model anthropic/claude-sonnet-4", got)
		}
		if got := b.text(t, "#result"); !strings.Contains(got, "links to this decision") {
			t.Errorf("result = %q, want the linked, verified broker result", got)
		}
		b.screenshot(t, "entry")
	})

	t.Run("policy versions", func(t *testing.T) {
		b.open(t, base+"/ui/#/policies")
		idx := evalJS[[]uint64](t, b, `[...document.querySelectorAll("tr[data-index]")].map(r => Number(r.dataset.index))`)
		if len(idx) == 0 {
			t.Fatal("no policy version listed")
		}
		b.open(t, fmt.Sprintf("%s/ui/#/policy/%d", base, idx[0]))
		b.screenshot(t, "policy")
		want := map[string]string{"policy source digest": "PASS"}
		for k, v := range entryAll {
			want[k] = v
		}
		wantChecks(t, b.checks(t), want)
	})

	t.Run("history", func(t *testing.T) {
		b.open(t, base+"/ui/#/history?agent="+url.QueryEscape(l.agent))
		if !historyServed(t, l.dev, l.agent) {
			if got := b.text(t, "#history-unavailable"); !strings.Contains(got, "History not served by this log") {
				t.Errorf("history = %q, want it to say the log serves no history", got)
			}
			return
		}
		wantChecks(t, b.checks(t), historyAll)
		n := evalJS[string](t, b, `document.querySelector("#history-summary").dataset.entries`)
		if n == "" || n == "0" {
			t.Errorf("history of %s shows %q entries", l.agent, n)
		}
		rows := evalJS[[]uint64](t, b, `[...document.querySelectorAll("table.entries tr[data-index]")].map(r => Number(r.dataset.index))`)
		for _, want := range []uint64{l.original, l.deny, l.allow, l.result} {
			if !contains(rows, want) {
				t.Errorf("history rows %v lack %d", rows, want)
			}
		}
		b.screenshot(t, "history")
	})

	t.Run("tampered history", func(t *testing.T) {
		if !historyServed(t, l.dev, l.agent) {
			t.Skip("this ztlog serves no GET /v1/history (verifier/history is not merged): nothing to tamper with")
		}
		proxy := tamperProxy(t, l.dev, "/v1/history", func(b []byte) []byte {
			var a map[string]any
			if err := json.Unmarshal(b, &a); err != nil {
				return b
			}
			if es, ok := a["entries"].([]any); ok && len(es) > 1 {
				a["entries"] = append(es[:1], es[2:]...) // leave one out
			}
			out, _ := json.Marshal(a)
			return out
		})
		b.open(t, offline(t, proxy, policyText)+"/ui/#/history?agent="+url.QueryEscape(l.agent))
		want := map[string]string{}
		for k, v := range historyAll {
			want[k] = v
		}
		want["completeness"], want["log inclusion"] = "FAIL", "FAIL"
		wantChecks(t, b.checks(t), want)
	})

	t.Run("tampered tile", func(t *testing.T) {
		sibling := (l.original ^ 1) * 32
		proxy := tamperProxy(t, l.dev, "/log/tile/0/", func(b []byte) []byte {
			if int(sibling) < len(b) {
				b[sibling] ^= 0xff
			}
			return b
		})
		b.open(t, fmt.Sprintf("%s/ui/#/entry/%d", offline(t, proxy, policyText), l.original))
		wantChecks(t, b.checks(t), map[string]string{"checkpoint signature": "PASS", "witness cosignatures": "PASS", "leaf hash": "PASS", "inclusion proof": "FAIL"})
	})

	t.Run("tampered entry", func(t *testing.T) {
		proxy := tamperProxy(t, l.dev, "/log/tile/entries/", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"resource":"demo://original"`), []byte(`"resource":"demo://forgery!"`), 1)
		})
		b.open(t, fmt.Sprintf("%s/ui/#/entry/%d", offline(t, proxy, policyText), l.original))
		wantChecks(t, b.checks(t), map[string]string{"checkpoint signature": "PASS", "witness cosignatures": "PASS", "leaf hash": "FAIL", "inclusion proof": "PASS"})
		b.screenshot(t, "tampered-entry")
		if got := b.text(t, "pre.mono"); !strings.Contains(got, "forgery!") {
			t.Errorf("the page does not show the served (forged) entry it failed: %q", got)
		}
	})

	t.Run("witness quorum not met", func(t *testing.T) {
		var logLine string
		for _, line := range strings.Split(string(policyText), "\n") {
			if strings.HasPrefix(line, "log ") {
				logLine = line
			}
		}
		p := fmt.Sprintf("%s\nwitness other %s\nquorum other\n", logLine, witnessKey(t, "witness.example/other"))
		b.open(t, offline(t, "http://"+l.dev.Addr, []byte(p))+"/ui/#/")
		wantChecks(t, b.checks(t), map[string]string{"checkpoint signature": "PASS", "witness cosignatures": "FAIL"})
	})

	t.Run("served by ztlog", func(t *testing.T) {
		b.open(t, "http://"+l.dev.Addr+"/ui/#/")
		wantChecks(t, b.checks(t), all)
		kind := evalJS[string](t, b, `document.querySelector("[data-trust]").dataset.trust`)
		if kind != "server" {
			t.Errorf("trust = %q, want the page to mark the server's own keys as not independent", kind)
		}
	})

	t.Run("explore a log directory", func(t *testing.T) {
		dir := explore(t, filepath.Join(l.dev.Dir, "log"), trust)
		b.open(t, fmt.Sprintf("%s/ui/#/entry/%d", dir, l.allow))
		wantChecks(t, b.checks(t), entryAll)
	})
}

// historyServed reports whether the dev log answers GET /v1/history.
func historyServed(t *testing.T, d *devproc.Dev, agent string) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + d.Addr + "/v1/history?agent=" + url.QueryEscape(agent))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return true
		case resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond) // the index is catching up
		default:
			return false
		}
	}
}

func contains(xs []uint64, x uint64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// checkpointVectors runs the page's verifyCheckpoint (ui/verify.js) over the
// Go verifier's checkpoint vectors (testdata/policy/checkpoints) and
// compares: the log signature verdict, the witnesses whose cosignatures
// count, those rejected, those unknown, and the quorum verdict. WebCrypto
// has no ML-DSA: an ML-DSA-44 cosignature is rejected in the page (and
// says so), so the page's cosigners are the vector's less those, and the
// quorum verdict is compared only where no ML-DSA cosignature counts.
func checkpointVectors(t *testing.T, b *browser) {
	dir := "../../testdata/policy/checkpoints"
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Note, Policy, Want string
		Cosigned, Rejected []string
		Unknown            int
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		t.Run(v.Note, func(t *testing.T) {
			note, err := os.ReadFile(filepath.Join(dir, v.Note))
			if err != nil {
				t.Fatal(err)
			}
			policy, err := os.ReadFile(filepath.Join(dir, "..", "valid", v.Policy))
			if err != nil {
				t.Fatal(err)
			}
			got := evalJS[struct {
				Signature, Witnesses      bool
				Cosigned, Rejected, MLDSA []string
				Unknown                   int
				SignatureWhy              string
			}](t, b, fmt.Sprintf(`(async () => {
				const v = await import("/ui/verify.js");
				const p = await v.parsePolicy(%s);
				const r = await v.verifyCheckpoint(%s, p, new Date());
				return {Signature: r.signature.ok, SignatureWhy: r.signature.reason, Witnesses: r.witnesses.ok,
					Cosigned: r.cosignatures.map(c => c.witness), Rejected: r.rejected.map(c => c.witness), Unknown: r.unknown.length,
					MLDSA: p.witnesses.filter(w => w.cosigType === 6).map(w => w.name)};
			})()`, jsString(policy), jsString(note)))
			mldsa := map[string]bool{}
			for _, w := range got.MLDSA {
				mldsa[w] = true
			}
			wantSig := v.Want == "valid" || v.Want == "quorum"
			if got.Signature != wantSig {
				t.Fatalf("log signature = %v (%s), want %v (vector: %s)", got.Signature, got.SignatureWhy, wantSig, v.Want)
			}
			if !wantSig {
				return
			}
			var wantCosigned []string
			needsMLDSA := false
			for _, w := range v.Cosigned {
				if mldsa[w] {
					needsMLDSA = true
				} else {
					wantCosigned = append(wantCosigned, w)
				}
			}
			if !sameSet(got.Cosigned, wantCosigned) {
				t.Errorf("cosigned %v, want %v (the vector's Ed25519 cosigners)", got.Cosigned, wantCosigned)
			}
			for _, w := range got.Rejected {
				if !mldsa[w] && !slicesContains(v.Rejected, w) {
					t.Errorf("rejected %s, which the vector counts", w)
				}
			}
			for _, w := range v.Rejected {
				if !slicesContains(got.Rejected, w) {
					t.Errorf("did not reject %s", w)
				}
			}
			if got.Unknown != v.Unknown {
				t.Errorf("unknown signers %d, want %d", got.Unknown, v.Unknown)
			}
			if !needsMLDSA && got.Witnesses != (v.Want == "valid") {
				t.Errorf("quorum met = %v, want %v (vector: %s)", got.Witnesses, v.Want == "valid", v.Want)
			}
		})
	}
}

// historyVectors runs the page's verifyHistory (ui/history.js) over the
// history answers of testdata/history, which verifier/history's own tests
// verify: every check must pass.
func historyVectors(t *testing.T, b *browser) {
	dir := "../../testdata/history"
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if os.IsNotExist(err) {
		t.Skip("testdata/history is not in this tree (verifier/history is not merged): no history vectors")
	}
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Policy  string   `json:"policy"`
		Answers []string `json:"answers"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	for _, name := range vectors.Answers {
		answer, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got := evalJS[[][2]any](t, b, fmt.Sprintf(`(async () => {
			const v = await import("/ui/verify.js");
			const h = await import("/ui/history.js");
			const a = JSON.parse(%s);
			const r = await h.verifyHistory(a, a.key, await v.parsePolicy(%s), new Date());
			return r.checks.map(([n, c]) => [n, c.ok ? "PASS" : "FAIL: " + c.reason]);
		})()`, jsString(answer), jsString([]byte(vectors.Policy))))
		if len(got) != 7 {
			t.Errorf("%s: %d checks, want 7", name, len(got))
		}
		for _, c := range got {
			if c[1] != "PASS" {
				t.Errorf("%s: %v %v", name, c[0], c[1])
			}
		}
	}
}

func jsString(b []byte) string {
	s, _ := json.Marshal(string(b))
	return string(s)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slicesContains(b, x) {
			return false
		}
	}
	return true
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
