package aws_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"k8s.io/klog/v2"

	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/aws"
	"github.com/zt-infra/ztlog/log/storage/storagetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMain(m *testing.M) {
	klog.SetSlogLogger(quiet)
	os.Exit(m.Run())
}

// s3rverPaths are where .ci/deps.d/s3rver.sh installs s3rver, besides PATH.
var s3rverPaths = []string{"/opt/ztlog-tools/node_modules/.bin/s3rver"}

func lookTool(t *testing.T, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s is not installed (make deps installs it); skipping the AWS driver test", name)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startProc(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listening on port %d after 60s", port)
}

// startMariaDB runs a private MariaDB server in a temp dir and returns a DSN
// for an empty database.
func startMariaDB(t *testing.T) string {
	mariadbd := lookTool(t, "mariadbd", "/usr/sbin/mariadbd")
	installDB := lookTool(t, "mariadb-install-db")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(installDB, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	startProc(t, mariadbd, "--no-defaults", "--datadir="+data, "--user=root", "--bind-address=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--socket="+filepath.Join(dir, "mysql.sock"),
		"--skip-grant-tables", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=1")
	waitTCP(t, port)
	root := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
	db, err := sql.Open("mysql", root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var lastErr error
	for range 100 {
		if _, lastErr = db.Exec("CREATE DATABASE ztlog"); lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("create database: %v", lastErr)
	}
	return root + "ztlog"
}

// startS3 runs s3rver, an S3-compatible server, with a bucket "ztlog".
func startS3(t *testing.T) string {
	s3rver := lookTool(t, "s3rver", s3rverPaths...)
	lookTool(t, "node")
	port := freePort(t)
	startProc(t, s3rver, "-d", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(port), "--silent", "--configure-bucket", "ztlog")
	waitTCP(t, port)
	t.Setenv("AWS_ACCESS_KEY_ID", "S3RVER")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "S3RVER")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// TestAWSDriver runs the log on Tessera's AWS driver against a real
// MySQL-compatible database (MariaDB) and a real S3-compatible store
// (s3rver): entries are sequenced, published and provable; a reopen
// continues the log; another key is refused.
func TestAWSDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and s3rver; skipped with -short")
	}
	cfg := aws.Config{DSN: startMariaDB(t), Bucket: "ztlog", BucketPrefix: "logs/a", S3Endpoint: startS3(t)}
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
