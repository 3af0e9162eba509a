// Package gcptest starts in-process stand-ins for Spanner and GCS on
// 127.0.0.1 so tests can run Tessera's GCP driver without Google:
// spannertest (the Spanner client library's in-memory gRPC server, behind a
// pass-through that adds CREATE TABLE IF NOT EXISTS; see spannerFront) and
// fake-gcs-server (a GCS JSON API server). Both listen on TCP, so another
// process (a `ztlog serve` under test) can reach them too.
package gcptest

import (
	"fmt"
	"testing"

	"cloud.google.com/go/spanner/spannertest"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/zt-infra/ztlog/log/storage/gcp"
)

// Database is the Spanner database name the tests use; spannertest serves
// any name.
const Database = "projects/ztlog/instances/test/databases/log"

// Bucket is the bucket Start creates.
const Bucket = "ztlog"

// Emulators are the running stand-ins.
type Emulators struct {
	// SpannerAddr is host:port for SPANNER_EMULATOR_HOST (the front).
	SpannerAddr string
	// GCSURL is the base URL for gcp.Config.GCSEndpoint / --gcs-endpoint.
	GCSURL string
	// GCS is the fake GCS server, for looking at stored objects directly.
	GCS *fakestorage.Server
}

// Start runs both servers until the test ends, creates Bucket, and sets
// SPANNER_EMULATOR_HOST for this process (Tessera opens its own Spanner
// clients and finds the emulator only through it). It clears
// STORAGE_EMULATOR_HOST so GCS is reached only through GCSURL.
func Start(t testing.TB) *Emulators {
	t.Helper()
	sp, err := spannertest.NewServer("127.0.0.1:0")
	if err != nil {
		t.Fatalf("spannertest: %v", err)
	}
	sp.SetLogger(func(format string, args ...any) {
		if testing.Verbose() {
			t.Logf("spannertest: "+format, args...)
		}
	})
	t.Cleanup(sp.Close)
	spannerAddr := startSpannerFront(t, sp.Addr)
	gs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1"})
	if err != nil {
		t.Fatalf("fake-gcs-server: %v", err)
	}
	t.Cleanup(gs.Stop)
	gs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	t.Setenv("SPANNER_EMULATOR_HOST", spannerAddr)
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	return &Emulators{SpannerAddr: spannerAddr, GCSURL: gs.URL(), GCS: gs}
}

// Config is a gcp storage configuration for these emulators, the log's
// objects under prefix.
func (e *Emulators) Config(prefix string) gcp.Config {
	return gcp.Config{Spanner: Database, Bucket: Bucket, BucketPrefix: prefix, GCSEndpoint: e.GCSURL}
}

// String is for test logs.
func (e *Emulators) String() string {
	return fmt.Sprintf("spanner %s, gcs %s", e.SpannerAddr, e.GCSURL)
}
