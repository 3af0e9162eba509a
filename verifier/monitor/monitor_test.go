package monitor

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func init() { klog.SetSlogLogger(quiet) }

const origin = "example.com/monitor-test"

// testLog is a real evidence log (package log, Tessera POSIX) in a temp dir.
type testLog struct {
	t   *testing.T
	dir string
	key *ztlog.Key
	n   int
}

func newLog(t *testing.T, key *ztlog.Key) *testLog {
	return &testLog{t: t, dir: t.TempDir(), key: key}
}

// append adds entries and waits until a checkpoint covers them.
func (l *testLog) append(entries [][]byte) {
	t := l.t
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: l.dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: l.key, CheckpointInterval: 10 * time.Millisecond, BatchMaxAge: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, e := range entries {
		if last, err = lg.Append(ctx, e); err != nil || last != uint64(l.n) {
			t.Fatalf("append: index %d (want %d), %v", last, l.n, err)
		}
		l.n++
	}
	if _, err := lg.Await(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := lg.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// source serves one of several log directories, switchable, and can
// replace the checkpoint it serves.
type source struct {
	mu         sync.Mutex
	root       string
	checkpoint []byte
}

func (s *source) set(root string, checkpoint []byte) {
	s.mu.Lock()
	s.root, s.checkpoint = root, checkpoint
	s.mu.Unlock()
}

func (s *source) fetcher() client.FileFetcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return client.FileFetcher{Root: s.root}
}

func (s *source) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	cp := s.checkpoint
	s.mu.Unlock()
	if cp != nil {
		return cp, nil
	}
	return s.fetcher().ReadCheckpoint(ctx)
}

func (s *source) ReadTile(ctx context.Context, l, i uint64, p uint8) ([]byte, error) {
	return s.fetcher().ReadTile(ctx, l, i, p)
}

func (s *source) ReadEntryBundle(ctx context.Context, i uint64, p uint8) ([]byte, error) {
	return s.fetcher().ReadEntryBundle(ctx, i, p)
}

type alerts struct {
	mu   sync.Mutex
	list []Alert
}

func (a *alerts) add(x Alert) {
	a.mu.Lock()
	a.list = append(a.list, x)
	a.mu.Unlock()
}

func (a *alerts) take() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.list
	a.list = nil
	return out
}

func kinds(as []Alert) string {
	var k []string
	for _, a := range as {
		k = append(k, a.Kind)
	}
	return strings.Join(k, ",")
}

type fixture struct {
	key    *ztlog.Key
	policy *trustpolicy.Policy
	now    time.Time
	state  string
	al     *alerts
}

func newFixture(t *testing.T) *fixture {
	skey, vkey, err := ztlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := trustpolicy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := audittest.DefaultScenario()
	return &fixture{key: key, policy: p, now: s.Start.Add(time.Minute), state: t.TempDir(), al: &alerts{}}
}

func (f *fixture) open(t *testing.T) *Monitor {
	m, err := Open(f.state, f.policy, Options{Now: func() time.Time { return f.now }, Alert: f.al.add, Audit: audit.Options{Window: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func poll(t *testing.T, m *Monitor, src audit.Source) {
	t.Helper()
	if err := m.Poll(context.Background(), src); err != nil {
		t.Fatal(err)
	}
}

func savedSize(t *testing.T, dir string) uint64 {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var s savedState
	if err := jsonUnmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	var size uint64
	fmt.Sscanf(strings.SplitN(s.Checkpoint, "\n", 3)[1], "%d", &size)
	return size
}

// A log forked by its own key: two real logs with the same key whose
// entries agree on a prefix. The monitor that followed one view alerts
// when it is shown the other, at the same size and at a larger one, and
// keeps its state at the last good checkpoint.
func TestForkedLog(t *testing.T) {
	f := newFixture(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(60))
	other := audittest.DefaultScenario()
	other.Start = other.Start.Add(time.Second) // different times: different entries
	forked := append(append([][]byte(nil), entries[:25]...), audittest.Slice(other.Entries(60))[25:]...)

	a, b := newLog(t, f.key), newLog(t, f.key)
	a.append(entries[:30])
	b.append(forked[:40])

	src := &source{}
	m := f.open(t)
	src.set(a.dir, nil)
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 || m.Checkpoint().Size != 30 {
		t.Fatalf("honest log: alerts %v, size %v", got, m.Checkpoint())
	}
	a.append(entries[30:40])
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 || m.Checkpoint().Size != 40 {
		t.Fatalf("honest growth: alerts %v", got)
	}

	// The other view at the same size: two roots for size 40.
	src.set(b.dir, nil)
	poll(t, m, src)
	got := f.al.take()
	if kinds(got) != KindInconsistent || !strings.Contains(got[0].Message, "two different roots for tree size 40") || got[0].Previous == "" || got[0].Checkpoint == "" {
		t.Fatalf("same-size fork: %+v", got)
	}
	// Polling the same bad checkpoint again does not repeat the alert.
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 {
		t.Fatalf("repeated alert: %v", got)
	}
	// The other view grows: still not an extension of what was seen.
	b.append(forked[40:60])
	poll(t, m, src)
	got = f.al.take()
	if kinds(got) != KindInconsistent || !strings.Contains(got[0].Message, "consistency proof does not verify") {
		t.Fatalf("larger fork: %+v", got)
	}
	if savedSize(t, f.state) != 40 || m.Checkpoint().Size != 40 {
		t.Fatalf("state moved to the forked view: %d", savedSize(t, f.state))
	}

	// A restarted monitor resumes at 40 and accepts the honest growth.
	m = f.open(t)
	if m.Checkpoint().Size != 40 {
		t.Fatalf("restored at %v", m.Checkpoint())
	}
	a.append(entries[40:60])
	src.set(a.dir, nil)
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 || savedSize(t, f.state) != 60 {
		t.Fatalf("after restart: alerts %v, saved %d", got, savedSize(t, f.state))
	}
	// The log rolled back to an older checkpoint.
	old := newLog(t, f.key)
	old.append(entries[:50])
	src.set(old.dir, nil)
	poll(t, m, src)
	if got := f.al.take(); kinds(got) != KindInconsistent || !strings.Contains(got[0].Message, "went backwards") {
		t.Fatalf("rollback: %+v", got)
	}
}

func copyDir(t *testing.T, from string) string {
	to := t.TempDir()
	if out, err := exec.Command("cp", "-a", from+"/.", to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return to
}

func flip(t *testing.T, path string, at int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A tampered tile is alerted (the checkpoint is still right, so it is
// accepted); a tampered entry bundle breaks the root: alerted, refused.
func TestTamperedTileAndBundle(t *testing.T) {
	f := newFixture(t)
	entries := audittest.Slice(audittest.DefaultScenario().Entries(300))
	l := newLog(t, f.key)
	l.append(entries[:100])
	src := &source{}
	src.set(l.dir, nil)
	m := f.open(t)
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 {
		t.Fatalf("%v", got)
	}
	l.append(entries[100:300])

	tampered := copyDir(t, l.dir)
	flip(t, filepath.Join(tampered, layout.TilePath(0, 0, 0)), 32*200)
	src.set(tampered, nil)
	poll(t, m, src)
	got := f.al.take()
	if kinds(got) != audit.CheckTiles || !strings.Contains(got[0].Message, "tile tile/0/000 differs") {
		t.Fatalf("tampered tile: %+v", got)
	}
	if savedSize(t, f.state) != 300 {
		t.Fatalf("saved %d", savedSize(t, f.state))
	}

	more := audittest.Slice(audittest.DefaultScenario().Entries(400))[300:]
	l.append(more)
	tampered = copyDir(t, l.dir)
	b := filepath.Join(tampered, layout.EntriesPath(1, uint8(400%256)))
	raw, _ := os.ReadFile(b)
	flip(t, b, len(raw)-30)
	src.set(tampered, nil)
	poll(t, m, src)
	got = f.al.take()
	found := false
	for _, a := range got {
		found = found || a.Kind == audit.CheckRoot
	}
	if !found {
		t.Fatalf("tampered bundle: %+v", got)
	}
	if savedSize(t, f.state) != 300 {
		t.Fatalf("state advanced past a bad root: %d", savedSize(t, f.state))
	}
	// The honest log is accepted afterwards, from the undone state.
	src.set(l.dir, nil)
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 || savedSize(t, f.state) != 400 {
		t.Fatalf("honest after tamper: %v, saved %d", got, savedSize(t, f.state))
	}
}

// Signature lines: an unknown key is reported, a corrupted log signature
// refused.
func TestSignatureAlerts(t *testing.T) {
	f := newFixture(t)
	l := newLog(t, f.key)
	l.append(audittest.Slice(audittest.DefaultScenario().Entries(20)))
	cp, _ := os.ReadFile(filepath.Join(l.dir, "checkpoint"))
	src := &source{}
	m := f.open(t)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	text := strings.SplitN(string(cp), "\n\n", 2)[0] + "\n"
	sig := binary.BigEndian.AppendUint32(nil, 0x01020304)
	sig = append(sig, ed25519.Sign(priv, []byte(text))...)
	withStranger := string(cp) + "— stranger.example/w " + base64.StdEncoding.EncodeToString(sig) + "\n"
	src.set(l.dir, []byte(withStranger))
	poll(t, m, src)
	if got := f.al.take(); kinds(got) != KindUnknownKey || !strings.Contains(got[0].Message, "stranger.example/w") {
		t.Fatalf("unknown key: %+v", got)
	}
	if m.Checkpoint() == nil || m.Checkpoint().Size != 20 {
		t.Fatal("a checkpoint with an extra unknown signature is still the log's")
	}

	l.append(audittest.Slice(audittest.DefaultScenario().Entries(30))[20:])
	cp, _ = os.ReadFile(filepath.Join(l.dir, "checkpoint"))
	lines := strings.Split(string(cp), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "— "+origin+" ") {
			s := []byte(line)
			s[len(s)-3] ^= 1
			if s[len(s)-3] == '+' || s[len(s)-3] == '/' {
				s[len(s)-3] = 'A'
			}
			lines[i] = string(s)
		}
	}
	src.set(l.dir, []byte(strings.Join(lines, "\n")))
	poll(t, m, src)
	if got := f.al.take(); kinds(got) != KindBadSignature {
		t.Fatalf("bad log signature: %+v", got)
	}
	if m.Checkpoint().Size != 20 {
		t.Fatal("accepted a checkpoint with a bad log signature")
	}
	// A checkpoint from a log the policy does not name.
	other, _ := note.NewSigner(mustSkey(t))
	forged, _ := note.Sign(&note.Note{Text: text}, other)
	src.set(l.dir, forged)
	poll(t, m, src)
	if got := f.al.take(); kinds(got) != KindUnknownLog {
		t.Fatalf("unknown log: %+v", got)
	}
}

func mustSkey(t *testing.T) string {
	skey, _, err := note.GenerateKey(rand.Reader, "impostor.example/log")
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

// Allows whose window passes without a result are alerted as time goes
// by, once each.
func TestMissingResults(t *testing.T) {
	f := newFixture(t)
	l := newLog(t, f.key)
	s := audittest.DefaultScenario()
	s.ResultLag = 1 << 30 // no results at all
	l.append(audittest.Slice(s.Entries(30)))
	src := &source{}
	src.set(l.dir, nil)
	m := f.open(t)
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 {
		t.Fatalf("within the window: %v", got)
	}
	f.now = f.now.Add(2 * time.Hour)
	poll(t, m, src)
	got := f.al.take()
	if len(got) == 0 {
		t.Fatal("no missing-result alerts")
	}
	for _, a := range got {
		if a.Kind != audit.CheckResultDue || a.Severity != audit.Warn || a.Index == nil {
			t.Fatalf("%+v", a)
		}
	}
	poll(t, m, src)
	if got := f.al.take(); len(got) != 0 {
		t.Fatalf("alerted twice: %v", got)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
