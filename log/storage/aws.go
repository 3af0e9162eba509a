package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/storage/aws"
)

// newAWS opens Tessera's AWS driver: a MySQL-compatible database sequences,
// an S3-compatible store holds tiles, bundles and the checkpoint. Credentials
// and region come from the AWS SDK's usual sources (environment, shared
// config, instance role).
func newAWS(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.DSN == "" {
		return nil, errors.New("storage: aws needs a MySQL-compatible database DSN (--db-dsn)")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("storage: aws needs an S3 bucket (--bucket)")
	}
	// Validate response checksums only where S3 requires them: not every
	// S3-compatible store sends them, and the SDK logs each one it misses.
	sdk, err := config.LoadDefaultConfig(ctx, config.WithResponseChecksumValidation(awssdk.ResponseChecksumValidationWhenRequired))
	if err != nil {
		return nil, fmt.Errorf("storage: aws: load SDK configuration: %v", err)
	}
	s3opts := func(o *s3.Options) {
		if cfg.S3Endpoint != "" {
			o.BaseEndpoint = awssdk.String(cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	}
	d, err := aws.New(ctx, aws.Config{
		SDKConfig:    &sdk,
		S3Options:    s3opts,
		Bucket:       cfg.Bucket,
		BucketPrefix: cfg.BucketPrefix,
		DSN:          cfg.DSN,
		HTTPClient:   cfg.HTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: aws: %v", err)
	}
	client := s3.NewFromConfig(sdk, s3opts)
	key := path.Join(cfg.BucketPrefix, layout.CheckpointPath)
	return &Backend{
		Driver: d,
		ReadCheckpoint: func(ctx context.Context) ([]byte, error) {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &cfg.Bucket, Key: &key})
			if err != nil {
				var nsk *s3types.NoSuchKey
				if errors.As(err, &nsk) {
					return nil, fmt.Errorf("s3://%s/%s: %w", cfg.Bucket, key, os.ErrNotExist)
				}
				return nil, fmt.Errorf("s3://%s/%s: %v", cfg.Bucket, key, err)
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		},
		Describe:              fmt.Sprintf("aws:s3://%s/%s", cfg.Bucket, cfg.BucketPrefix),
		MinCheckpointInterval: time.Second,
	}, nil
}
