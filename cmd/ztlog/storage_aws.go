//go:build !ztlog_noaws

package main

import (
	"context"

	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/contract/gate/results/sqlclaims"
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/storage/aws"
)

func init() {
	drivers["aws"] = func(f *serveFlags) storage.Opener {
		return aws.Opener(aws.Config{DSN: f.dbDSN, Bucket: f.bucket, BucketPrefix: f.bucketPrefix, S3Endpoint: f.s3Endpoint})
	}
	// Many frontends append to one log here: they agree on each
	// decision's one result in the log's own database.
	resultClaims["aws"] = func(ctx context.Context, f *serveFlags) (results.Claims, error) {
		return sqlclaims.Open(ctx, f.dbDSN)
	}
}
