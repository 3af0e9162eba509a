//go:build !ztlog_nogcp

package main

import (
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/storage/gcp"
)

func init() {
	drivers["gcp"] = func(f *serveFlags) storage.Opener {
		return gcp.Opener(gcp.Config{Spanner: f.spanner, Bucket: f.bucket, BucketPrefix: f.bucketPrefix, GCSEndpoint: f.gcsEndpoint})
	}
}
