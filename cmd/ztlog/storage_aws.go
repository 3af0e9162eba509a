//go:build !ztlog_noaws

package main

import (
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/storage/aws"
)

func init() {
	drivers["aws"] = func(f *serveFlags) storage.Opener {
		return aws.Opener(aws.Config{DSN: f.dbDSN, Bucket: f.bucket, BucketPrefix: f.bucketPrefix, S3Endpoint: f.s3Endpoint})
	}
}
