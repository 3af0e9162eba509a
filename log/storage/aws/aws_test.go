package aws_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/internal/testutil/awstest"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/aws"
	"github.com/zt-infra/ztlog/log/storage/storagetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	klog.SetSlogLogger(quiet)
	os.Exit(m.Run())
}

// TestAWSDriver runs the log on Tessera's AWS driver against a real
// MySQL-compatible database (MariaDB) and a real S3-compatible store
// (s3rver): entries are sequenced, published and provable; a reopen
// continues the log; another key is refused.
func TestAWSDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and s3rver; skipped with -short")
	}
	cfg := aws.Config{DSN: awstest.StartMariaDB(t).DSN, Bucket: awstest.Bucket, BucketPrefix: "logs/a", S3Endpoint: awstest.StartS3(t)}
	ctx := context.Background()
	skey, _, err := ztlog.GenerateKey("test.example/aws")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ztlog.ParseKey(skey)
	open := func(k *ztlog.Key) (*ztlog.Log, error) {
		b, err := aws.Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.MinCheckpointInterval != time.Second {
			t.Fatalf("aws MinCheckpointInterval = %v", b.MinCheckpointInterval)
		}
		return ztlog.Open(ctx, ztlog.Options{Backend: b, Key: k, Logger: quiet})
	}
	l, err := open(key)
	if err != nil {
		t.Fatal(err)
	}
	entries, cp := storagetest.AppendAndProve(t, l, "aws", 60*time.Second)

	other, _, _ := ztlog.GenerateKey("test.example/aws")
	otherKey, _ := ztlog.ParseKey(other)
	if _, err := open(otherKey); !errors.Is(err, ztlog.ErrWrongLog) {
		t.Fatalf("another key on the same bucket: %v, want ErrWrongLog", err)
	}

	l, err = open(key)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	storagetest.ContinuesAfterReopen(t, l, entries, cp, 60*time.Second)
}
