// Package awstest runs the parts of Tessera's AWS driver as real, private
// processes for tests: a MariaDB server (the MySQL-compatible database that
// sequences) and s3rver (an S3-compatible store), each in a temp dir on a
// free 127.0.0.1 port, killed when the test ends. A test that lacks one of
// them skips, naming it (.ci/deps.d/mariadb.sh and s3rver.sh install them).
package awstest

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// S3rverPaths are where .ci/deps.d/s3rver.sh installs s3rver, besides PATH.
var S3rverPaths = []string{"/opt/ztlog-tools/node_modules/.bin/s3rver"}

// Bucket is the bucket StartS3 creates.
const Bucket = "ztlog"

// LookTool returns the path of name (on PATH or one of extra), or skips the
// test naming the tool.
func LookTool(t testing.TB, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("%s is not installed (make deps installs it); skipping a test of the AWS driver", name)
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a started helper process whose output is shown if the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  devproc.SyncBuffer
	once sync.Once
}

func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), cmd: exec.Command(name, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.out.String())
		}
	})
	return p
}

func (p *proc) kill() {
	p.once.Do(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
}

// WaitTCP waits (up to 60s) until something listens on 127.0.0.1:port.
func WaitTCP(t testing.TB, port int) {
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

// MariaDB is a private MariaDB server.
type MariaDB struct {
	// DSN names the database "ztlog" on it.
	DSN  string
	Port int

	t       testing.TB
	bin     string
	dataDir string
	dir     string
	proc    *proc
}

// StartMariaDB runs a private MariaDB server in a temp dir with an empty
// database "ztlog".
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	m := &MariaDB{t: t, bin: LookTool(t, "mariadbd", "/usr/sbin/mariadbd"), dir: t.TempDir()}
	installDB := LookTool(t, "mariadb-install-db")
	m.dataDir = filepath.Join(m.dir, "data")
	if out, err := exec.Command(installDB, "--no-defaults", "--datadir="+m.dataDir, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.Port = freePort(t)
	m.Start()
	root := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.Port)
	db, err := sql.Open("mysql", root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var lastErr error
	for range 100 {
		if _, lastErr = db.Exec("CREATE DATABASE " + Bucket); lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("create database: %v", lastErr)
	}
	m.DSN = root + Bucket
	return m
}

// Start starts the server (again, after Stop) on the same port and data.
func (m *MariaDB) Start() {
	m.t.Helper()
	m.proc = startProc(m.t, m.bin, "--no-defaults", "--datadir="+m.dataDir, "--user=root", "--bind-address=127.0.0.1",
		fmt.Sprintf("--port=%d", m.Port), "--socket="+filepath.Join(m.dir, "mysql.sock"),
		"--skip-grant-tables", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=1",
		"--innodb-buffer-pool-size=32M", "--performance-schema=OFF")
	WaitTCP(m.t, m.Port)
}

// Stop kills the server (SIGKILL: as a crash would).
func (m *MariaDB) Stop() { m.proc.kill() }

// StartS3 runs s3rver with the bucket "ztlog", sets the AWS SDK's
// environment (credentials, region) for the test, and returns its endpoint.
func StartS3(t testing.TB) string {
	t.Helper()
	s3rver := LookTool(t, "s3rver", S3rverPaths...)
	LookTool(t, "node")
	port := freePort(t)
	startProc(t, s3rver, "-d", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(port), "--silent", "--configure-bucket", Bucket)
	WaitTCP(t, port)
	for k, v := range Env() {
		t.Setenv(k, v)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// Env is the AWS SDK environment s3rver accepts (for child processes too).
func Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":         "S3RVER",
		"AWS_SECRET_ACCESS_KEY":     "S3RVER",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}
