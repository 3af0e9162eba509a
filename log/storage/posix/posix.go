// Package posix opens Tessera's POSIX driver for the evidence log: tiles,
// entry bundles and the checkpoint as files under one directory. It is the
// default storage and needs nothing else.
package posix

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
	tposix "github.com/transparency-dev/tessera/storage/posix"

	"github.com/zt-infra/ztlog/log/storage"
)

// Config locates the log.
type Config struct {
	// Dir is the log directory; it is created if missing.
	Dir string
}

// Opener returns a storage.Opener for cfg.
func Opener(cfg Config) storage.Opener {
	return func(ctx context.Context, hc *http.Client) (*storage.Backend, error) { return Open(ctx, cfg, hc) }
}

// Open opens (or creates) the POSIX log under cfg.Dir; hc carries the
// log's outgoing requests (to witnesses), nil for storage.DefaultHTTPClient.
func Open(ctx context.Context, cfg Config, hc *http.Client) (*storage.Backend, error) {
	if cfg.Dir == "" {
		return nil, &storage.ConfigError{Driver: "posix", Field: "Dir", Want: "a data directory"}
	}
	if hc == nil {
		hc = storage.DefaultHTTPClient()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("storage: data directory %q: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create data directory: %w", err)
	}
	d, err := tposix.New(ctx, tposix.Config{Path: dir, HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("storage: posix: %w", err)
	}
	return &storage.Backend{
		Driver: d,
		ReadCheckpoint: func(context.Context) ([]byte, error) {
			return os.ReadFile(filepath.Join(dir, layout.CheckpointPath))
		},
		Describe:              "posix:" + dir,
		MinCheckpointInterval: 100 * time.Millisecond,
	}, nil
}
