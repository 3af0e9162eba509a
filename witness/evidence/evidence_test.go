package evidence

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/zt-infra/ztlog/verifier/splitview"
)

func evidenceOf(root string) *splitview.Evidence {
	return &splitview.Evidence{
		Format: splitview.Format, Kind: splitview.SameSize, Origin: "example.com/log",
		Checkpoints: [2]string{
			"example.com/log\n5\nAAAA\n\n— example.com/log sig1\n",
			"example.com/log\n5\n" + root + "\n\n— example.com/log sig2\n",
		},
		Observed: [2]splitview.Observation{{Source: "https://a.example/"}, {Source: "https://b.example/"}},
	}
}

// Each distinct conflicting pair is filed once, alerted once and counted
// once; seeing it again (a new signature on the same bodies) is not new.
func TestReportFilesEachPairOnce(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	dir := filepath.Join(t.TempDir(), "evidence")
	r, err := New(dir, slog.New(slog.NewJSONHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	e := evidenceOf("BBBB")
	raw := []byte(`{"the":"encoded evidence"}`)
	path, isNew, err := r.Report(e, raw)
	if err != nil || !isNew {
		t.Fatalf("first report: new=%v err=%v", isNew, err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("filed %q (%v), want the encoding given", b, err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("evidence directory mode %v, want 0700", st.Mode().Perm())
	}
	for _, want := range []string{`"alert":"split_view"`, `"origin":"example.com/log"`, `"conclusive":true`, "zt-audit verify " + path} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("alert line lacks %s:\n%s", want, logs.String())
		}
	}

	again := evidenceOf("BBBB")
	again.Checkpoints[1] = strings.Replace(again.Checkpoints[1], "sig2", "sig3", 1)
	p2, isNew, err := r.Report(again, []byte("other encoding"))
	if err != nil || isNew || p2 != path {
		t.Fatalf("same pair again: path %s new=%v err=%v", p2, isNew, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, raw) {
		t.Fatal("the filed evidence was overwritten")
	}

	p3, isNew, err := r.Report(evidenceOf("CCCC"), raw)
	if err != nil || !isNew || p3 == path {
		t.Fatalf("another pair: path %s new=%v err=%v", p3, isNew, err)
	}
	if n := testutil.ToFloat64(r.count.WithLabelValues("example.com/log", splitview.SameSize)); n != 2 {
		t.Errorf("ztwitness_split_views_total = %v, want 2", n)
	}
	if c := strings.Count(logs.String(), "ALERT"); c != 2 {
		t.Errorf("%d alert lines, want 2", c)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "split-view-*.json"))
	if len(files) != 2 {
		t.Errorf("evidence files %v, want 2", files)
	}
}

func TestNewNeedsADirectory(t *testing.T) {
	if _, err := New("", nil, nil); err == nil {
		t.Fatal("no directory accepted")
	}
	// Two reporters on one registry share the counter.
	reg := prometheus.NewRegistry()
	a, err := New(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if a.count != b.count {
		t.Error("a second reporter on the same registry has its own counter")
	}
}
