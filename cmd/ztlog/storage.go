package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"

	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

// drivers are the storage drivers linked into this binary, by --storage
// name. posix is always there; aws and gcp register themselves from
// storage_aws.go and storage_gcp.go unless the binary is built without them
// (-tags ztlog_noaws,ztlog_nogcp: a posix-only binary links no cloud SDK).
var drivers = map[string]func(f *serveFlags) storage.Opener{
	"posix": func(f *serveFlags) storage.Opener { return posix.Opener(posix.Config{Dir: f.dataDir}) },
}

// resultClaims open, for a driver that lets several frontends append to one
// log, the store where they agree on each decision's one result.
var resultClaims = map[string]func(ctx context.Context, f *serveFlags) (results.Claims, error){}

// claims opens the result claims of the --storage driver (nil if it has
// none: one frontend per log).
func (f *serveFlags) claims(ctx context.Context) (results.Claims, error) {
	open, ok := resultClaims[f.storageKind]
	if kind, err := f.contract.enabled(); !ok || err != nil || kind == "none" {
		return nil, nil // no decision path (or a flag error serve reports)
	}
	c, err := open(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("--storage %s: %w", f.storageKind, err)
	}
	return c, nil
}

// storageFlags names the flag behind each driver Config field, so that a
// storage.ConfigError reads in the operator's terms.
var storageFlags = map[string]string{
	"Dir":          "--data-dir",
	"DSN":          "--db-dsn",
	"Bucket":       "--bucket",
	"BucketPrefix": "--bucket-prefix",
	"S3Endpoint":   "--s3-endpoint",
	"Spanner":      "--spanner",
	"GCSEndpoint":  "--gcs-endpoint",
}

// storage returns the opener of the driver --storage names.
func (f *serveFlags) storage() (storage.Opener, error) {
	kind := f.storageKind
	if kind == "" {
		kind = "posix"
	}
	mk, ok := drivers[kind]
	if !ok {
		names := make([]string, 0, len(drivers))
		for n := range drivers {
			names = append(names, n)
		}
		sort.Strings(names)
		if slices.Contains([]string{"aws", "gcp"}, kind) {
			return nil, usageError{fmt.Errorf("--storage %s: this ztlog was built without the %s driver (it has %v)", kind, kind, names)}
		}
		return nil, usageError{fmt.Errorf("--storage %q: unknown driver (want one of %v)", kind, names)}
	}
	open := mk(f)
	return func(ctx context.Context, hc *http.Client) (*storage.Backend, error) {
		b, err := open(ctx, hc)
		var ce *storage.ConfigError
		if errors.As(err, &ce) {
			return nil, usageError{flagError(ce)}
		}
		return b, err
	}, nil
}

// flagError restates a driver's configuration error with the flag to set.
func flagError(ce *storage.ConfigError) error {
	flag := storageFlags[ce.Field]
	if flag == "" {
		return ce
	}
	if ce.Value == "" {
		return fmt.Errorf("--storage %s needs %s (%s)", ce.Driver, ce.Want, flag)
	}
	return fmt.Errorf("--storage %s: %s %q: want %s", ce.Driver, flag, ce.Value, ce.Want)
}
