package gcp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"
	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/internal/testutil/gcptest"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/storage/gcp"
	"github.com/zt-infra/ztlog/log/storage/storagetest"
)

// quiet discards the log's own log lines (and klog's, which the Spanner
// client writes through).
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	klog.SetSlogLogger(quiet)
	os.Exit(m.Run())
}

// TestGCPDriver runs the log on Tessera's GCP driver against spannertest
// and fake-gcs-server: entries get indices and are provable against a
// published, signed checkpoint; another key or origin on the existing log
// is refused and writes nothing; a reopen continues the same log, its new
// checkpoint consistent with the old.
func TestGCPDriver(t *testing.T) {
	emu := gcptest.Start(t)
	cfg := emu.Config("logs/g")
	ctx := context.Background()
	skey, vkey, err := ztlog.GenerateKey("test.example/gcp")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ztlog.ParseKey(skey)
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	backend := func() *storage.Backend {
		b, err := gcp.Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.MinCheckpointInterval != 1200*time.Millisecond {
			t.Fatalf("gcp MinCheckpointInterval = %v, want Tessera's 1.2s", b.MinCheckpointInterval)
		}
		return b
	}
	open := func(k *ztlog.Key) (*ztlog.Log, error) {
		b := backend()
		l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: k, Logger: quiet})
		if err != nil {
			b.Close()
		}
		return l, err
	}
	// A new log: no checkpoint, and the error says so in the os way.
	b := backend()
	if _, err := b.ReadCheckpoint(ctx); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadCheckpoint of a new log: %v, want os.ErrNotExist", err)
	}
	b.Close()

	l, err := open(key)
	if err != nil {
		t.Fatal(err)
	}
	entries, cp := storagetest.AppendAndProve(t, l, "gcp", 30*time.Second)

	// The object in the bucket is the signed checkpoint, read without an
	// appender.
	b = backend()
	raw, err := b.ReadCheckpoint(ctx)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	published, _, _, err := flog.ParseCheckpoint(raw, "test.example/gcp", verifier)
	if err != nil {
		t.Fatalf("published checkpoint does not verify: %v\n%s", err, raw)
	}
	if published.Size < 300 {
		t.Fatalf("published checkpoint size %d, want >= 300", published.Size)
	}
	if _, err := emu.GCS.GetObject(gcptest.Bucket, "logs/g/checkpoint"); err != nil {
		t.Fatalf("checkpoint is not under the bucket prefix: %v", err)
	}

	// Another key, and another origin, are refused before anything is
	// written.
	other, _, _ := ztlog.GenerateKey("test.example/gcp")
	otherKey, _ := ztlog.ParseKey(other)
	if _, err := open(otherKey); !errors.Is(err, ztlog.ErrWrongLog) || !strings.Contains(err.Error(), "not signed by the key") {
		t.Fatalf("another key on the same log: %v, want ErrWrongLog naming the key", err)
	}
	elsewhere, _, _ := ztlog.GenerateKey("test.example/elsewhere")
	elsewhereKey, _ := ztlog.ParseKey(elsewhere)
	if _, err := open(elsewhereKey); !errors.Is(err, ztlog.ErrWrongLog) || !strings.Contains(err.Error(), `holds the log "test.example/gcp"`) {
		t.Fatalf("another origin on the same log: %v, want ErrWrongLog naming the origin", err)
	}
	b = backend()
	after, err := b.ReadCheckpoint(ctx)
	b.Close()
	if err != nil || !bytes.Equal(after, raw) {
		t.Fatalf("a refused open changed the checkpoint:\n%s\n%s (%v)", raw, after, err)
	}

	// Restart: the same log continues.
	l, err = open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	storagetest.ContinuesAfterReopen(t, l, entries, cp, 30*time.Second)
}

// TestGCPConfigErrors: missing or malformed settings are refused before
// anything is dialled, naming the Config field (a command maps it to its
// flag).
func TestGCPConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg       gcp.Config
		field     string
		malformed bool
	}{
		{gcp.Config{Bucket: "b"}, "Spanner", false},
		{gcp.Config{Spanner: "mydb", Bucket: "b"}, "Spanner", true},
		{gcp.Config{Spanner: "projects/p/instances/i/databases/d"}, "Bucket", false},
		{gcp.Config{Spanner: "projects/p/instances/i/databases/d", Bucket: "b", GCSEndpoint: "127.0.0.1:4443"}, "GCSEndpoint", true},
	} {
		_, err := gcp.Open(ctx, c.cfg, nil)
		var ce *storage.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%+v: %v, want a *storage.ConfigError", c.cfg, err)
			continue
		}
		if ce.Field != c.field {
			t.Errorf("%+v: error names field %q, want %q", c.cfg, ce.Field, c.field)
		}
		if got := ce.Value != ""; got != c.malformed {
			t.Errorf("%+v: error carries value %q; malformed = %v", c.cfg, ce.Value, c.malformed)
		}
	}
}

// TestGCPMissingBucket: a bucket that does not exist is named as such, not
// taken for a new log.
func TestGCPMissingBucket(t *testing.T) {
	emu := gcptest.Start(t)
	cfg := emu.Config("")
	cfg.Bucket = "no-such-bucket"
	b, err := gcp.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.ReadCheckpoint(context.Background())
	if err == nil || errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Fatalf("ReadCheckpoint on a missing bucket: %v", err)
	}
}

// TestGCSEmulatorPreconditions checks that fake-gcs-server enforces what
// Tessera's GCP driver relies on, so TestGCPDriver exercises it rather than
// an emulator that accepts everything: a write with DoesNotExist
// (ifGenerationMatch=0) over an existing object fails with HTTP 412, the
// status Tessera's setObject turns into its compare-and-accept-identical
// path; JSON reads return the object and its generation.
func TestGCSEmulatorPreconditions(t *testing.T) {
	emu := gcptest.Start(t)
	ctx := context.Background()
	c, err := gcs.NewClient(ctx, gcs.WithJSONReads(), option.WithEndpoint(emu.GCSURL+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	obj := c.Bucket(gcptest.Bucket).Object("tile/0/000")
	write := func(data string) error {
		w := obj.If(gcs.Conditions{DoesNotExist: true}).NewWriter(ctx)
		w.ChunkSize = len(data) + 1024 // as Tessera sets it
		if _, err := w.Write([]byte(data)); err != nil {
			return err
		}
		return w.Close()
	}
	if err := write("first"); err != nil {
		t.Fatalf("first write: %v", err)
	}
	err = write("second")
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != http.StatusPreconditionFailed {
		t.Fatalf("write over an existing object with DoesNotExist: %v, want HTTP 412", err)
	}
	r, err := obj.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf bytes.Buffer
	buf.ReadFrom(r)
	if buf.String() != "first" || r.Attrs.Generation == 0 {
		t.Fatalf("read back %q generation %d", buf.String(), r.Attrs.Generation)
	}
}
