// Package storage opens the Tessera driver that holds the evidence log.
//
// One constructor, New, turns a Config into a Backend; callers never name a
// driver package. The drivers built in are:
//
//   - "posix" (the default): tiles, entry bundles and the checkpoint as files
//     under Config.Dir (Tessera's POSIX driver). Needs nothing else.
//   - "aws": sequencing in a MySQL-compatible database and the log's static
//     resources in an S3-compatible object store (Tessera's AWS driver).
//     Config.DSN, Config.Bucket and, for a store that is not AWS S3,
//     Config.S3Endpoint.
//   - "gcp": sequencing in a Spanner database and the log's static resources
//     in a GCS bucket (Tessera's GCP driver). Config.Spanner, Config.Bucket
//     and, for a store that is not Google's (an emulator), Config.GCSEndpoint.
//     Credentials are Google's Application Default Credentials; the
//     SPANNER_EMULATOR_HOST environment variable points every Spanner client
//     (Tessera opens its own to create its tables) at an emulator.
//
// Another driver is one more case in New and one more file here; nothing
// that calls New changes.
package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/storage/posix"
)

// Config selects and configures a driver.
type Config struct {
	// Kind is "posix" (default), "aws" or "gcp".
	Kind string
	// Dir is the POSIX log directory.
	Dir string
	// DSN is the MySQL-compatible database DSN (aws), e.g.
	// "user:pass@tcp(127.0.0.1:3306)/ztlog".
	DSN string
	// Spanner is the Spanner database (gcp):
	// "projects/P/instances/I/databases/D".
	Spanner string
	// Bucket, BucketPrefix and S3Endpoint locate the object store (aws).
	// S3Endpoint is empty for AWS S3 itself; set it (with path-style
	// addressing) for another S3-compatible store.
	Bucket       string
	BucketPrefix string
	S3Endpoint   string
	// GCSEndpoint is empty for Google Cloud Storage itself (gcp); set it to
	// the base URL of a GCS-compatible store (an emulator such as
	// fake-gcs-server), which is then used without Google credentials.
	// Bucket and BucketPrefix name the GCS bucket and prefix.
	GCSEndpoint string
	// HTTPClient is used for outgoing requests (witnesses). Default: a
	// client with timeouts.
	HTTPClient *http.Client
}

// Backend is an opened driver plus what the log needs before it starts
// appending.
type Backend struct {
	// Driver is passed to tessera.NewAppender.
	Driver tessera.Driver
	// ReadCheckpoint returns the published checkpoint without starting an
	// appender, or an error wrapping os.ErrNotExist for a new log. The log
	// uses it to refuse a different key or origin before anything is written.
	ReadCheckpoint func(ctx context.Context) ([]byte, error)
	// Describe names the storage for logs and errors, e.g. "posix:/var/lib/ztlog".
	Describe string
	// Close releases what New opened (database handles). It may be nil.
	Close func() error
	// MinCheckpointInterval is the shortest checkpoint interval the driver
	// accepts (Tessera's POSIX driver: 100ms; AWS: 1s; GCP: 1.2s).
	MinCheckpointInterval time.Duration
}

// New opens the driver cfg names.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	switch cfg.Kind {
	case "", "posix":
		return newPOSIX(ctx, cfg)
	case "aws":
		return newAWS(ctx, cfg)
	case "gcp":
		return newGCP(ctx, cfg)
	default:
		return nil, fmt.Errorf("storage: unknown driver %q (want posix, aws or gcp)", cfg.Kind)
	}
}

func newPOSIX(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Dir == "" {
		return nil, errors.New("storage: posix needs a data directory (--data-dir)")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("storage: data directory %q: %v", cfg.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create data directory: %v", err)
	}
	d, err := posix.New(ctx, posix.Config{Path: dir, HTTPClient: cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("storage: posix: %v", err)
	}
	return &Backend{
		Driver: d,
		ReadCheckpoint: func(context.Context) ([]byte, error) {
			return os.ReadFile(filepath.Join(dir, layout.CheckpointPath))
		},
		Describe:              "posix:" + dir,
		MinCheckpointInterval: 100 * time.Millisecond,
	}, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}
