// Package storage is the boundary between the evidence log and the Tessera
// driver that holds it: a Backend is an opened driver plus what the log needs
// before it starts appending.
//
// Each driver is its own package, so a program links only the clouds it
// opens:
//
//   - storage/posix (the default): tiles, entry bundles and the checkpoint as
//     files under a directory (Tessera's POSIX driver). Needs nothing else.
//   - storage/aws: sequencing in a MySQL-compatible database and the log's
//     static resources in an S3-compatible object store (Tessera's AWS
//     driver). Several frontends may append to one log.
//   - storage/gcp: sequencing in a Spanner database and the log's static
//     resources in a GCS bucket (Tessera's GCP driver).
//
// Another driver is one more package with an Open function returning a
// *Backend; nothing that consumes a Backend changes.
package storage

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/transparency-dev/tessera"
)

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
	// Close releases what Open opened (database handles). It may be nil.
	Close func() error
	// MinCheckpointInterval is the shortest checkpoint interval the driver
	// accepts (Tessera's POSIX driver: 100ms; AWS: 1s; GCP: 1.2s).
	MinCheckpointInterval time.Duration
	// Objects is the driver's object store for what the service keeps
	// beside the log and every frontend of the log must see (policy
	// sources): the S3 bucket (AWS) or GCS bucket (GCP), under the log's
	// prefix. Nil for the POSIX driver, whose one frontend keeps such
	// content in its data directory.
	Objects Objects
}

// Objects is an object store shared by every frontend of one log. Keys
// are slash-separated paths, relative to the log's prefix in its bucket;
// they never collide with the log's own resources (checkpoint, tile/).
type Objects interface {
	// Get returns the object's bytes, or an error wrapping os.ErrNotExist
	// when there is no object at key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put writes data at key, replacing any object there, and returns once
	// the object store has it durably.
	Put(ctx context.Context, key string, data []byte) error
}

// Opener opens a driver. The log's HTTP client (for witnesses) is passed in;
// nil means DefaultHTTPClient.
type Opener func(ctx context.Context, hc *http.Client) (*Backend, error)

// DefaultHTTPClient is the client a driver uses when it is given none.
func DefaultHTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}

// ConfigError is a driver configuration that cannot work. Field names the
// driver's Config field at fault ("Dir", "DSN", "Bucket", ...), so that a
// command can name its own flag for it.
type ConfigError struct {
	Driver string // "posix", "aws" or "gcp"
	Field  string // the Config field at fault
	Value  string // the value given, "" when it was missing
	Want   string // what would work
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("storage: %s needs %s (%s)", e.Driver, e.Want, e.Field)
	}
	return fmt.Sprintf("storage: %s: %s %q: want %s", e.Driver, e.Field, e.Value, e.Want)
}
