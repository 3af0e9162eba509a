// Package gcp opens Tessera's GCP driver for the evidence log: a Spanner
// database sequences, a GCS bucket holds tiles, bundles and the checkpoint.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"time"

	"cloud.google.com/go/spanner"
	gcs "cloud.google.com/go/storage"
	"github.com/transparency-dev/tessera/api/layout"
	tgcp "github.com/transparency-dev/tessera/storage/gcp"
	"google.golang.org/api/option"

	"github.com/zt-infra/ztlog/log/storage"
)

// gcpMinCheckpointInterval is Tessera's GCP driver minimum
// (storage/gcp.minCheckpointInterval, unexported): GCS allows about one
// update per second to one object, and the checkpoint is one object.
const gcpMinCheckpointInterval = 1200 * time.Millisecond

// spannerDatabase is the shape of a Spanner database resource name.
var spannerDatabase = regexp.MustCompile(`^projects/[^/]+/instances/[^/]+/databases/[^/]+$`)

// Config locates the log.
type Config struct {
	// Spanner is the Spanner database: "projects/P/instances/I/databases/D".
	Spanner string
	// Bucket and BucketPrefix locate the log's objects in GCS.
	Bucket       string
	BucketPrefix string
	// GCSEndpoint is empty for Google Cloud Storage itself; set it to the
	// base URL of a GCS-compatible store (an emulator such as
	// fake-gcs-server), which is then used without Google credentials.
	GCSEndpoint string
}

// Opener returns a storage.Opener for cfg.
func Opener(cfg Config) storage.Opener {
	return func(ctx context.Context, hc *http.Client) (*storage.Backend, error) { return Open(ctx, cfg, hc) }
}

// Open opens Tessera's GCP driver: a Spanner database sequences, a GCS
// bucket holds tiles, bundles and the checkpoint. Credentials come from
// Google's Application Default Credentials. SPANNER_EMULATOR_HOST points the
// Spanner clients (ours and the ones Tessera opens itself to create its
// tables) at an emulator; Config.GCSEndpoint (or STORAGE_EMULATOR_HOST)
// points GCS at a store that is not Google's.
func Open(ctx context.Context, cfg Config, hc *http.Client) (*storage.Backend, error) {
	const want = "a Spanner database, projects/P/instances/I/databases/D"
	if cfg.Spanner == "" {
		return nil, &storage.ConfigError{Driver: "gcp", Field: "Spanner", Want: want}
	}
	if !spannerDatabase.MatchString(cfg.Spanner) {
		return nil, &storage.ConfigError{Driver: "gcp", Field: "Spanner", Value: cfg.Spanner, Want: want}
	}
	if cfg.Bucket == "" {
		return nil, &storage.ConfigError{Driver: "gcp", Field: "Bucket", Want: "a GCS bucket"}
	}
	if hc == nil {
		hc = storage.DefaultHTTPClient()
	}
	gcsOpts := []option.ClientOption{gcs.WithJSONReads()}
	if cfg.GCSEndpoint != "" {
		ep, err := gcsEndpoint(cfg.GCSEndpoint)
		if err != nil {
			return nil, err
		}
		// A store that is not Google's (an emulator) gets no Google
		// credentials.
		gcsOpts = append(gcsOpts, option.WithEndpoint(ep), option.WithoutAuthentication())
	}
	gcsClient, err := gcs.NewClient(ctx, gcsOpts...)
	if err != nil {
		return nil, fmt.Errorf("storage: gcp: GCS client: %w", err)
	}
	spannerClient, err := spanner.NewClient(ctx, cfg.Spanner)
	if err != nil {
		gcsClient.Close()
		return nil, fmt.Errorf("storage: gcp: Spanner client for %s: %w", cfg.Spanner, err)
	}
	d, err := tgcp.New(ctx, tgcp.Config{
		GCSClient:     gcsClient,
		SpannerClient: spannerClient,
		HTTPClient:    hc,
		Bucket:        cfg.Bucket,
		BucketPrefix:  cfg.BucketPrefix,
		Spanner:       cfg.Spanner,
	})
	if err != nil {
		spannerClient.Close()
		gcsClient.Close()
		return nil, fmt.Errorf("storage: gcp: %w", err)
	}
	objects := &gcsObjects{bucket: gcsClient.Bucket(cfg.Bucket), name: cfg.Bucket, prefix: cfg.BucketPrefix}
	return &storage.Backend{
		Driver: d,
		ReadCheckpoint: func(ctx context.Context) ([]byte, error) {
			return objects.Get(ctx, layout.CheckpointPath)
		},
		Objects:  objects,
		Describe: fmt.Sprintf("gcp:%s,gs://%s/%s", cfg.Spanner, cfg.Bucket, cfg.BucketPrefix),
		Close: func() error {
			spannerClient.Close()
			return gcsClient.Close()
		},
		MinCheckpointInterval: gcpMinCheckpointInterval,
	}, nil
}

// gcsEndpoint turns Config.GCSEndpoint into the JSON API endpoint the GCS client
// wants: a bare "http://host:port" gets the API path "/storage/v1/", as
// STORAGE_EMULATOR_HOST does; a URL with a path is used as given.
func gcsEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &storage.ConfigError{Driver: "gcp", Field: "GCSEndpoint", Value: raw, Want: "an http or https URL such as http://127.0.0.1:4443"}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/storage/v1/"
	}
	return u.String(), nil
}

// gcsObjects is the log's bucket as a storage.Objects.
type gcsObjects struct {
	bucket *gcs.BucketHandle
	name   string
	prefix string
}

// key is the object name of key: Tessera joins BucketPrefix with
// filepath.Join; path.Join is the same on the platforms ztlog runs on.
func (o *gcsObjects) key(key string) string { return path.Join(o.prefix, key) }

func (o *gcsObjects) Get(ctx context.Context, key string) ([]byte, error) {
	k := o.key(key)
	where := fmt.Sprintf("gs://%s/%s", o.name, k)
	r, err := o.bucket.Object(k).NewReader(ctx)
	if errors.Is(err, gcs.ErrObjectNotExist) {
		// A missing bucket reads as a missing object; say which it
		// is when we may look (buckets.get is not in every role).
		if _, aerr := o.bucket.Attrs(ctx); errors.Is(aerr, gcs.ErrBucketNotExist) {
			return nil, fmt.Errorf("%s: the bucket %q does not exist; create it first", where, o.name)
		}
		return nil, fmt.Errorf("%s: %w", where, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return b, nil
}

func (o *gcsObjects) Put(ctx context.Context, key string, data []byte) error {
	k := o.key(key)
	w := o.bucket.Object(k).NewWriter(ctx)
	w.ContentType = "application/octet-stream"
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("gs://%s/%s: %w", o.name, k, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("gs://%s/%s: %w", o.name, k, err)
	}
	return nil
}
