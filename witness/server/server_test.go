package server

// Protocol tests written from the text of C2SP tlog-witness: every request
// is a raw HTTP request body built here by hand, and every answer is
// checked byte for byte against what the spec says.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/zt-infra/ztlog/verifier/splitview"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/evidence"
	"github.com/zt-infra/ztlog/witness/state"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	// Tessera (in the interop test) logs through klog; keep output to the tests.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLog is a log made by hand: a Merkle tree and a signing key.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{origin: origin, signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
}

func (l *testLog) grow(n int, prefix string) {
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("%s-%d", prefix, l.tree.Size())))
	}
}

// checkpoint signs the tree at size with the log key.
func (l *testLog) checkpoint(t testing.TB, size uint64) string {
	t.Helper()
	return l.signRoot(t, size, l.tree.HashAt(size))
}

func (l *testLog) signRoot(t testing.TB, size uint64, root []byte) string {
	t.Helper()
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(root))
	n, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(n)
}

// request is an add-checkpoint body, written out as the spec describes it.
func (l *testLog) request(t testing.TB, old, size uint64) string {
	t.Helper()
	body := fmt.Sprintf("old %d\n", old)
	if old > 0 && old < size {
		p, err := l.tree.ConsistencyProof(old, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range p {
			body += base64.StdEncoding.EncodeToString(h) + "\n"
		}
	}
	return body + "\n" + l.checkpoint(t, size)
}

type fixture struct {
	url       string
	w         *Witness
	store     *state.Store
	cfg       atomic.Pointer[config.Config]
	cosigners []*cosigner.Cosigner
	evidence  string
}

func newFixture(t *testing.T, logs []*testLog, algs ...string) *fixture {
	t.Helper()
	if len(algs) == 0 {
		algs = []string{cosigner.Ed25519}
	}
	f := &fixture{evidence: filepath.Join(t.TempDir(), "evidence")}
	for _, a := range algs {
		skey, _, err := cosigner.Generate("witness.example/w1", a)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cosigner.Parse(skey)
		if err != nil {
			t.Fatal(err)
		}
		f.cosigners = append(f.cosigners, c)
	}
	f.setLogs(t, logs)
	st, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ev, err := evidence.New(f.evidence, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.w, err = New(Options{Cosigners: f.cosigners, Store: st, Config: f.cfg.Load, Evidence: ev, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.w.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fixture) setLogs(t *testing.T, logs []*testLog) { f.setLogsTB(t, logs) }

func (f *fixture) setLogsTB(t testing.TB, logs []*testLog) {
	t.Helper()
	var parts []string
	for _, l := range logs {
		parts = append(parts, fmt.Sprintf(`{"origin":%q,"verifier_key":%q}`, l.origin, l.vkey))
	}
	c, err := config.Parse("test", []byte(`{"logs":[`+strings.Join(parts, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Store(c)
}

type answer struct {
	status int
	ctype  string
	body   string
}

func (f *fixture) post(t *testing.T, body string) answer {
	t.Helper()
	resp, err := http.Post(f.url+"/add-checkpoint", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

func (f *fixture) verifiers() note.Verifiers {
	var vs []note.Verifier
	for _, c := range f.cosigners {
		vs = append(vs, c.Verifier)
	}
	return note.VerifierList(vs...)
}

// checkCosigned checks a 200 answer as the spec describes it: one or more
// note signature lines, each from a witness key, over the checkpoint, with a
// non-zero timestamp.
func (f *fixture) checkCosigned(t *testing.T, a answer, checkpoint string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", a.status, a.body)
	}
	lines := strings.SplitAfter(a.body, "\n")
	if lines[len(lines)-1] != "" {
		t.Fatalf("answer does not end in a newline: %q", a.body)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != len(f.cosigners) {
		t.Fatalf("%d signature lines, want one per witness key (%d)", len(lines), len(f.cosigners))
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "— witness.example/w1 ") {
			t.Fatalf("not a signature line of the witness: %q", line)
		}
		sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.Fields(line)[2]))
		if err != nil || len(sig) < 12 || binary.BigEndian.Uint64(sig[4:12]) == 0 {
			t.Fatalf("cosignature timestamp missing or zero: %q", line)
		}
	}
	// "the client MAY concatenate it to the checkpoint, and use a note
	// verification function configured with the witness keys it trusts"
	n, err := note.Open([]byte(checkpoint+a.body), f.verifiers())
	if err != nil {
		t.Fatalf("cosignatures do not verify: %v", err)
	}
	if len(n.Sigs) != len(f.cosigners) {
		t.Fatalf("%d cosignatures verify, want %d", len(n.Sigs), len(f.cosigners))
	}
}

func TestAddCheckpointFollowsSpec(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	f := newFixture(t, []*testLog{l})
	l.grow(13, "a")

	// Empty tree first: the root must be the hash of the empty string.
	emptyReq := "old 0\n\n" + l.signRoot(t, 0, rfc6962.DefaultHasher.EmptyRoot())
	f.checkCosigned(t, f.post(t, emptyReq), l.signRoot(t, 0, rfc6962.DefaultHasher.EmptyRoot()))

	// Old size 0 (what was cosigned) and no proof: any tree is consistent.
	a := f.post(t, "old 0\n\n"+l.checkpoint(t, 5))
	f.checkCosigned(t, a, l.checkpoint(t, 5))

	// 409: old size 0 but 5 was cosigned; body "5\n", text/x.tlog.size.
	for _, old := range []uint64{0, 3} {
		a = f.post(t, l.request(t, old, 8))
		if a.status != http.StatusConflict || a.ctype != "text/x.tlog.size" || a.body != "5\n" {
			t.Fatalf("old %d: got %d %q %q, want 409 text/x.tlog.size \"5\\n\"", old, a.status, a.ctype, a.body)
		}
	}
	// With the right old size and a proof: cosigned.
	f.checkCosigned(t, f.post(t, l.request(t, 5, 8)), l.checkpoint(t, 8))
	// Same size again, same root: cosigned again (a fresh timestamp).
	f.checkCosigned(t, f.post(t, l.request(t, 8, 8)), l.checkpoint(t, 8))
	// Onwards to 13 with a proof that crosses tile-like boundaries.
	f.checkCosigned(t, f.post(t, l.request(t, 8, 13)), l.checkpoint(t, 13))

	// The monitoring endpoint serves the latest cosigned checkpoint with the
	// log's signature and the witness's cosignature.
	resp, err := http.Get(f.url + "/" + state.OriginHash("example.com/log") + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(got), strings.SplitN(l.checkpoint(t, 13), "\n\n", 2)[0]) {
		t.Fatalf("GET checkpoint: %d %q", resp.StatusCode, got)
	}
	lv, _ := note.NewVerifier(l.vkey)
	if _, err := note.Open(got, note.VerifierList(lv)); err != nil {
		t.Fatalf("served checkpoint lacks the log signature: %v", err)
	}
	if _, err := note.Open(got, f.verifiers()); err != nil {
		t.Fatalf("served checkpoint lacks the witness cosignature: %v", err)
	}
}

func TestAddCheckpointRefusals(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	other := newTestLog(t, "example.com/unknown")
	impostor := newTestLog(t, "example.com/log") // same origin, another key
	f := newFixture(t, []*testLog{l})
	l.grow(10, "a")
	impostor.grow(10, "b")
	other.grow(10, "c")
	f.checkCosigned(t, f.post(t, "old 0\n\n"+l.checkpoint(t, 4)), l.checkpoint(t, 4))

	badSig := l.checkpoint(t, 6)
	i := strings.LastIndex(badSig, " ") + 10
	// Replace one base64 character of the signature by another valid one
	// (flipping a bit can make it invalid base64: a malformed note, 400).
	flipped := byte('A')
	if badSig[i] == 'A' {
		flipped = 'B'
	}
	badSig = badSig[:i] + string(flipped) + badSig[i+1:]

	for name, tc := range map[string]struct {
		body   string
		status int
	}{
		"unknown origin":          {other.request(t, 4, 6), 404},
		"signed by another key":   {impostor.request(t, 4, 6), 403},
		"bad log signature":       {"old 4\n" + proofLines(t, l, 4, 6) + "\n" + badSig, 403},
		"unsigned":                {"old 4\n" + proofLines(t, l, 4, 6) + "\n" + strings.SplitN(l.checkpoint(t, 6), "\n\n", 2)[0] + "\n", 400},
		"old size above size":     {"old 7\n\n" + l.checkpoint(t, 6), 400},
		"no old line":             {"\n" + l.checkpoint(t, 6), 400},
		"leading zero":            {"old 04\n" + proofLines(t, l, 4, 6) + "\n" + l.checkpoint(t, 6), 400},
		"no empty line":           {"old 4\n" + l.checkpoint(t, 6), 400},
		"not a checkpoint":        {"old 0\n\n" + signText(t, l, "example.com/log\nhello\n"), 400},
		"64 proof lines":          {"old 4\n" + strings.Repeat(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n", 64) + "\n" + l.checkpoint(t, 6), 400},
		"wrong old size":          {l.request(t, 2, 6), 409},
		"proof does not verify":   {"old 4\n" + proofLines(t, impostor, 4, 6) + "\n" + l.checkpoint(t, 6), 422},
		"no proof":                {"old 4\n\n" + l.checkpoint(t, 6), 422},
		"root differs, same size": {"old 4\n\n" + l.signRoot(t, 4, l.tree.HashAt(5)), 422},
	} {
		t.Run(name, func(t *testing.T) {
			a := f.post(t, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d (%s), want %d", a.status, a.body, tc.status)
			}
			if tc.status == 409 {
				return
			}
			if !strings.HasPrefix(a.ctype, "application/json") || !strings.Contains(a.body, `"code"`) {
				t.Fatalf("error body %q (%s) is not the JSON error shape", a.body, a.ctype)
			}
		})
	}
	// Nothing above changed the state: 4 is still the cosigned size.
	if a := f.post(t, l.request(t, 0, 6)); a.status != 409 || a.body != "4\n" {
		t.Fatalf("state moved: %d %q", a.status, a.body)
	}
	// A proof when the old size is 0 is refused with 422 (fresh origin).
	f2 := newFixture(t, []*testLog{l})
	if a := f2.post(t, "old 0\n"+proofLines(t, l, 4, 6)+"\n"+l.checkpoint(t, 6)); a.status != 422 {
		t.Fatalf("proof with old size 0: %d %s", a.status, a.body)
	}
	// A size-0 checkpoint whose root is not the empty tree's: 422.
	if a := f2.post(t, "old 0\n\n"+l.signRoot(t, 0, l.tree.HashAt(1))); a.status != 422 {
		t.Fatalf("bad empty root: %d %s", a.status, a.body)
	}
	// Method and path errors.
	resp, _ := http.Get(f.url + "/add-checkpoint")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET add-checkpoint: %d", resp.StatusCode)
	}
	for _, p := range []string{"/" + state.OriginHash("example.com/unknown") + "/checkpoint", "/" + strings.ToUpper(state.OriginHash("example.com/log")) + "/checkpoint", "/x/checkpoint", "/nothing"} {
		resp, _ := http.Get(f.url + p)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// A log that forks after the witness cosigned is refused, and the refusal
// is filed as split-view evidence that verifies.
func TestForkIsRefusedAndFiled(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	f := newFixture(t, []*testLog{l})
	l.grow(5, "a")
	f.checkCosigned(t, f.post(t, "old 0\n\n"+l.checkpoint(t, 5)), l.checkpoint(t, 5))

	// The fork: same key, same first three entries, then others.
	fork := &testLog{origin: l.origin, signer: l.signer, vkey: l.vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := 0; i < 3; i++ {
		fork.tree.AppendData([]byte(fmt.Sprintf("a-%d", i)))
	}
	fork.grow(6, "fork")
	// The fork's own proof from 5 to 9 does not lead from the cosigned root.
	a := f.post(t, fork.request(t, 5, 9))
	if a.status != 422 {
		t.Fatalf("fork: %d %s, want 422", a.status, a.body)
	}
	// Same size, other root: 422 too.
	if a := f.post(t, "old 5\n\n"+fork.checkpoint(t, 5)); a.status != 422 {
		t.Fatalf("fork at the same size: %d %s", a.status, a.body)
	}
	files, _ := filepath.Glob(filepath.Join(f.evidence, "split-view-*.json"))
	if len(files) != 2 {
		t.Fatalf("%d evidence files, want 2", len(files))
	}
	lv, _ := splitview.VerifierKeys([]string{l.vkey})
	kinds := map[string]bool{}
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		v, err := splitview.Verify(raw, lv)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !v.Conclusive {
			t.Fatalf("%s: %+v, want conclusive", file, v)
		}
		kinds[v.Kind] = true
	}
	if !kinds[splitview.SameSize] || !kinds[splitview.Inconsistent] {
		t.Fatalf("kinds %v", kinds)
	}
	// The same conflict again files nothing new.
	f.post(t, fork.request(t, 5, 9))
	if again, _ := filepath.Glob(filepath.Join(f.evidence, "split-view-*.json")); len(again) != 2 {
		t.Fatalf("repeat filed again: %d files", len(again))
	}
	// And the honest log continues.
	l.grow(4, "a")
	f.checkCosigned(t, f.post(t, l.request(t, 5, 9)), l.checkpoint(t, 9))
}

func TestBothAlgorithms(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	f := newFixture(t, []*testLog{l}, cosigner.Ed25519, cosigner.MLDSA44)
	l.grow(3, "a")
	f.checkCosigned(t, f.post(t, "old 0\n\n"+l.checkpoint(t, 3)), l.checkpoint(t, 3))
}

func TestConfigChangeTakesEffect(t *testing.T) {
	a, b := newTestLog(t, "a.example/log"), newTestLog(t, "b.example/log")
	a.grow(2, "a")
	b.grow(2, "b")
	f := newFixture(t, []*testLog{a})
	if r := f.post(t, "old 0\n\n"+b.checkpoint(t, 2)); r.status != 404 {
		t.Fatalf("unconfigured log: %d", r.status)
	}
	f.setLogs(t, []*testLog{a, b})
	f.checkCosigned(t, f.post(t, "old 0\n\n"+b.checkpoint(t, 2)), b.checkpoint(t, 2))
	f.setLogs(t, []*testLog{a})
	if r := f.post(t, b.request(t, 2, 2)); r.status != 404 {
		t.Fatalf("removed log: %d", r.status)
	}
}

// The race the spec warns about: requests from the same old size to
// different new sizes, concurrently. Exactly one wins each round, the
// others get 409 with the winner's size, and the state never goes back.
func TestConcurrentRequestsNeverRollBack(t *testing.T) {
	l := newTestLog(t, "example.com/log")
	f := newFixture(t, []*testLog{l})
	l.grow(200, "a")
	f.checkCosigned(t, f.post(t, "old 0\n\n"+l.checkpoint(t, 1)), l.checkpoint(t, 1))
	cur := uint64(1)
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []uint64
		conflicts := map[string]int{}
		for k := uint64(1); k <= 8; k++ {
			size := cur + k
			body := l.request(t, cur, size)
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := f.post(t, body)
				mu.Lock()
				defer mu.Unlock()
				switch a.status {
				case 200:
					won = append(won, size)
				case 409:
					conflicts[a.body]++
				default:
					t.Errorf("size %d: %d %s", size, a.status, a.body)
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("round %d: %d requests won (%v), want exactly 1", round, len(won), won)
		}
		for body := range conflicts {
			if body != fmt.Sprintf("%d\n", won[0]) {
				t.Fatalf("round %d: 409 said %q, the winner was %d", round, body, won[0])
			}
		}
		cur = won[0]
		stored, _ := f.store.Load(l.origin)
		if !strings.HasPrefix(string(stored), fmt.Sprintf("%s\n%d\n", l.origin, cur)) {
			t.Fatalf("state %q, want size %d", stored, cur)
		}
	}
}

func proofLines(t *testing.T, l *testLog, old, size uint64) string {
	t.Helper()
	p, err := l.tree.ConsistencyProof(old, size)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	for _, h := range p {
		s += base64.StdEncoding.EncodeToString(h) + "\n"
	}
	return s
}

func signText(t *testing.T, l *testLog, text string) string {
	t.Helper()
	n, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(n)
}
