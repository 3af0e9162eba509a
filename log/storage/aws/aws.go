// Package aws opens Tessera's AWS driver for the evidence log: a
// MySQL-compatible database sequences (several frontends may append to one
// log; Tessera's integration takes a row lock so one integrates at a time),
// an S3-compatible store holds tiles, bundles and the checkpoint.
package aws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/transparency-dev/tessera/api/layout"
	taws "github.com/transparency-dev/tessera/storage/aws"

	"github.com/zt-infra/ztlog/log/storage"
)

// Config locates the log.
type Config struct {
	// DSN is the MySQL-compatible database DSN, e.g.
	// "user:pass@tcp(127.0.0.1:3306)/ztlog".
	DSN string
	// Bucket and BucketPrefix locate the log's objects. S3Endpoint is empty
	// for AWS S3 itself; set it (path-style addressing is then used) for
	// another S3-compatible store.
	Bucket       string
	BucketPrefix string
	S3Endpoint   string
}

// Opener returns a storage.Opener for cfg.
func Opener(cfg Config) storage.Opener {
	return func(ctx context.Context, hc *http.Client) (*storage.Backend, error) { return Open(ctx, cfg, hc) }
}

// Open opens Tessera's AWS driver: a MySQL-compatible database sequences,
// an S3-compatible store holds tiles, bundles and the checkpoint. Credentials
// and region come from the AWS SDK's usual sources (environment, shared
// config, instance role).
func Open(ctx context.Context, cfg Config, hc *http.Client) (*storage.Backend, error) {
	if cfg.DSN == "" {
		return nil, &storage.ConfigError{Driver: "aws", Field: "DSN", Want: "a MySQL-compatible database DSN"}
	}
	if cfg.Bucket == "" {
		return nil, &storage.ConfigError{Driver: "aws", Field: "Bucket", Want: "an S3 bucket"}
	}
	if hc == nil {
		hc = storage.DefaultHTTPClient()
	}
	// Validate response checksums only where S3 requires them: not every
	// S3-compatible store sends them, and the SDK logs each one it misses.
	sdk, err := config.LoadDefaultConfig(ctx, config.WithResponseChecksumValidation(awssdk.ResponseChecksumValidationWhenRequired))
	if err != nil {
		return nil, fmt.Errorf("storage: aws: load SDK configuration: %w", err)
	}
	s3opts := func(o *s3.Options) {
		if cfg.S3Endpoint != "" {
			o.BaseEndpoint = awssdk.String(cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	}
	d, err := taws.New(ctx, taws.Config{
		SDKConfig:    &sdk,
		S3Options:    s3opts,
		Bucket:       cfg.Bucket,
		BucketPrefix: cfg.BucketPrefix,
		DSN:          cfg.DSN,
		HTTPClient:   hc,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: aws: %w", err)
	}
	objects := &s3Objects{client: s3.NewFromConfig(sdk, s3opts), bucket: cfg.Bucket, prefix: cfg.BucketPrefix}
	return &storage.Backend{
		Driver: d,
		ReadCheckpoint: func(ctx context.Context) ([]byte, error) {
			return objects.Get(ctx, layout.CheckpointPath)
		},
		Describe:              fmt.Sprintf("aws:s3://%s/%s", cfg.Bucket, cfg.BucketPrefix),
		MinCheckpointInterval: time.Second,
		Objects:               objects,
	}, nil
}

// s3Objects is the log's bucket as a storage.Objects.
type s3Objects struct {
	client *s3.Client
	bucket string
	prefix string
}

func (o *s3Objects) Get(ctx context.Context, key string) ([]byte, error) {
	k := path.Join(o.prefix, key)
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &k})
	if err != nil {
		var nsk *s3types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("s3://%s/%s: %w", o.bucket, k, os.ErrNotExist)
		}
		return nil, fmt.Errorf("s3://%s/%s: %w", o.bucket, k, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("s3://%s/%s: %w", o.bucket, k, err)
	}
	return b, nil
}

func (o *s3Objects) Put(ctx context.Context, key string, data []byte) error {
	k := path.Join(o.prefix, key)
	_, err := o.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &o.bucket, Key: &k, Body: bytes.NewReader(data),
		ContentLength: awssdk.Int64(int64(len(data)))})
	if err != nil {
		return fmt.Errorf("s3://%s/%s: %w", o.bucket, k, err)
	}
	return nil
}
