package audittest_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// A log written by the real log package (Tessera POSIX) audits clean, and
// every check ran. (It lives here, not in package audit, so that the
// audit's fuzz targets are not built with the log's storage drivers.)
func TestAuditRealLog(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := ztlog.GenerateKey("example.com/audit-real-log")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := trustpolicy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	backend, err := posix.Open(ctx, posix.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: backend, Key: key, CheckpointInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	entries := audittest.Slice(audittest.DefaultScenario().Entries(200))
	var last uint64
	for i, e := range entries {
		if last, err = l.Append(ctx, e); err != nil || last != uint64(i) {
			t.Fatalf("append %d: index %d, %v", i, last, err)
		}
	}
	if _, err := l.Await(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := audit.Run(ctx, client.FileFetcher{Root: dir}, pol, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Valid || r.TreeSize != 200 || r.Entries != 200 {
		t.Fatalf("valid %v size %d entries %d: %+v", r.Valid, r.TreeSize, r.Entries, r.First)
	}
	for _, id := range []string{audit.CheckCheckpoint, audit.CheckRoot, audit.CheckTiles, audit.CheckBundles, audit.CheckParse, audit.CheckResultLink, audit.CheckResultOnce, audit.CheckRevocation, audit.CheckCapacity} {
		if c := r.Check(id); c.Status() != "pass" {
			t.Errorf("%s: %s (checked %d)", id, c.Status(), c.Checked)
		}
	}
	if r.Kinds["result"] == 0 || r.Kinds["decision.allow"] != r.Kinds["result"]+r.Open {
		t.Errorf("kinds %v, open %d", r.Kinds, r.Open)
	}
}
