package spire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// spireVersion is the SPIRE release .ci/deps.d/spire.sh installs.
const spireVersion = "1.13.3"

// svidTTL is the default X.509-SVID lifetime of both SPIRE servers: short, so
// that SVIDs rotate (at about half their life) within the test. SPIRE sets no
// lower bound on it; the agents check for rotation every 5 s.
const svidTTL = 20 * time.Second

// spireTools finds spire-server and spire-agent: $ZTLOG_SPIRE_BIN, the
// directory .ci/deps.d/spire.sh installs to, then PATH. The test skips,
// naming what is missing.
func spireTools(t *testing.T) (server, agent string) {
	t.Helper()
	dirs := []string{os.Getenv("ZTLOG_SPIRE_BIN"), "/opt/ztlog-tools/spire-" + spireVersion + "/bin"}
	find := func(name string) string {
		for _, d := range dirs {
			if d == "" {
				continue
			}
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		p, _ := exec.LookPath(name)
		return p
	}
	server, agent = find("spire-server"), find("spire-agent")
	var missing []string
	if server == "" {
		missing = append(missing, "spire-server")
	}
	if agent == "" {
		missing = append(missing, "spire-agent")
	}
	if len(missing) > 0 {
		t.Skipf("%s v%s not found in $ZTLOG_SPIRE_BIN, /opt/ztlog-tools/spire-%s/bin or PATH (.ci/deps.d/spire.sh builds them)",
			strings.Join(missing, " and "), spireVersion, spireVersion)
	}
	return server, agent
}

// proc is a long-running process of the test, killed (SIGKILL, with its
// process group) when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *devproc.SyncBuffer
	done chan struct{}
}

// startProc starts bin with args (and env added to the test's), output
// collected; on a failed test the last lines of it are logged.
func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &devproc.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output (last lines) ---\n%s", name, tail(p.out.String(), 40))
		}
	})
	return p
}

// kill ends the process (and its group) and waits for it, at most 10 s.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// exited says whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls check every 200 ms until it returns nil, failing the test
// with the last error once timeout has passed.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run runs a short command, bounded by timeout, and returns its output.
func run(timeout time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// freePort is a 127.0.0.1 port free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// webPKI is a test CA standing in for the Web PKI, and a serving
// certificate for 127.0.0.1 from it: the bundle endpoints use the https_web
// profile with it, and the SPIRE servers trust it through SSL_CERT_FILE
// (which Go's system pool reads on Linux).
type webPKI struct {
	caFile, certFile, keyFile string
}

func newWebPKI(t *testing.T, dir string) webPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ztlog SPIRE e2e web CA (test only)"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	w := webPKI{caFile: filepath.Join(dir, "web-ca.pem"), certFile: filepath.Join(dir, "web-endpoint.pem"), keyFile: filepath.Join(dir, "web-endpoint.key")}
	for path, b := range map[string]*pem.Block{w.caFile: {Type: "CERTIFICATE", Bytes: caDER}, w.certFile: {Type: "CERTIFICATE", Bytes: der},
		w.keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// spireDomain is one SPIRE trust domain: a server and one agent.
type spireDomain struct {
	td                  string // trust domain name, e.g. ztlog.test
	serverBin, agentBin string
	dir                 string
	serverSock          string // the server API socket
	agentSock           string // the agent's Workload API socket
	bundlePort          int    // the bundle endpoint (https_web)
	serverPort          int
	agentID             string // the agent's SPIFFE ID (join token)
	server, agent       *proc
}

// ID is the SPIFFE ID of path in the domain.
func (d *spireDomain) ID(path string) string { return "spiffe://" + d.td + path }

// WorkloadAPI is the agent's Workload API address for --workload-api.
func (d *spireDomain) WorkloadAPI() string { return "unix://" + d.agentSock }

// newSPIREDomain lays out a trust domain under dir (short: it holds unix
// sockets). Start it with startServer and startAgent.
func newSPIREDomain(t *testing.T, serverBin, agentBin, td, dir string) *spireDomain {
	t.Helper()
	for _, sub := range []string{"server-data", "agent-data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return &spireDomain{td: td, serverBin: serverBin, agentBin: agentBin, dir: dir,
		serverSock: filepath.Join(dir, "server.sock"), agentSock: filepath.Join(dir, "agent.sock"),
		bundlePort: freePort(t), serverPort: freePort(t)}
}

// startServer starts spire-server: sqlite datastore, join_token node
// attestation, in-memory keys, X.509-SVIDs of svidTTL, a bundle endpoint on
// 127.0.0.1 (https_web, served with pki's certificate), federated with
// partner (whose bundle endpoint it polls).
func (d *spireDomain) startServer(t *testing.T, pki webPKI, partner *spireDomain) {
	t.Helper()
	conf := fmt.Sprintf(`server {
    bind_address = "127.0.0.1"
    bind_port = "%d"
    socket_path = %q
    trust_domain = %q
    data_dir = %q
    log_level = "DEBUG"
    default_x509_svid_ttl = %q
    federation {
        bundle_endpoint {
            address = "127.0.0.1"
            port = %d
            profile "https_web" {
                serving_cert_file {
                    cert_file_path = %q
                    key_file_path = %q
                    file_sync_interval = "1h"
                }
            }
        }
        federates_with %q {
            bundle_endpoint_url = "https://127.0.0.1:%d"
            bundle_endpoint_profile "https_web" {}
        }
    }
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = %q
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "memory" {
        plugin_data {}
    }
}
`, d.serverPort, d.serverSock, d.td, filepath.Join(d.dir, "server-data"), svidTTL.String(), d.bundlePort, pki.certFile, pki.keyFile,
		partner.td, partner.bundlePort, filepath.Join(d.dir, "server-data", "datastore.sqlite3"))
	path := filepath.Join(d.dir, "server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.server = startProc(t, "spire-server "+d.td, []string{"SSL_CERT_FILE=" + pki.caFile}, d.serverBin, "run", "-config", path)
	waitFor(t, "spire-server "+d.td+" healthy", 60*time.Second, func() error {
		if d.server.exited() {
			return fmt.Errorf("spire-server exited: %s", tail(d.server.out.String(), 10))
		}
		_, err := run(10*time.Second, d.serverBin, "healthcheck", "-socketPath", d.serverSock)
		return err
	})
}

// startAgent starts spire-agent with a fresh join token and the unix
// workload attestor (with the executable's path and digest as selectors).
func (d *spireDomain) startAgent(t *testing.T) {
	t.Helper()
	bundle, err := run(10*time.Second, d.serverBin, "bundle", "show", "-socketPath", d.serverSock)
	if err != nil {
		t.Fatal(err)
	}
	bundleFile := filepath.Join(d.dir, "bootstrap.pem")
	if err := os.WriteFile(bundleFile, []byte(bundle), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(10*time.Second, d.serverBin, "token", "generate", "-socketPath", d.serverSock, "-ttl", "600")
	if err != nil {
		t.Fatal(err)
	}
	// "Token: <uuid>", then a warning that the token names no SPIFFE ID.
	var token string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Token: "); ok {
			token = v
		}
	}
	if token == "" {
		t.Fatalf("spire-server token generate: no token in %q", out)
	}
	d.agentID = d.ID("/spire/agent/join_token/" + token)
	conf := fmt.Sprintf(`agent {
    data_dir = %q
    log_level = "DEBUG"
    server_address = "127.0.0.1"
    server_port = "%d"
    socket_path = %q
    trust_bundle_path = %q
    trust_domain = %q
}

plugins {
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "memory" {
        plugin_data {}
    }
    WorkloadAttestor "unix" {
        plugin_data {
            discover_workload_path = true
        }
    }
}
`, filepath.Join(d.dir, "agent-data"), d.serverPort, d.agentSock, bundleFile, d.td)
	path := filepath.Join(d.dir, "agent.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.agent = startProc(t, "spire-agent "+d.td, nil, d.agentBin, "run", "-config", path, "-joinToken", token)
	waitFor(t, "spire-agent "+d.td+" healthy", 60*time.Second, func() error {
		if d.agent.exited() {
			return fmt.Errorf("spire-agent exited: %s", tail(d.agent.out.String(), 10))
		}
		_, err := run(10*time.Second, d.agentBin, "healthcheck", "-socketPath", d.agentSock)
		return err
	})
}

// entry registers a workload: id (a path in the domain) for the executable
// at exe (unix:path; every role runs from its own copy, since all of them
// run as this user and unix:uid could not tell them apart), federating
// with the given trust domains.
func (d *spireDomain) entry(t *testing.T, id, exe string, federatesWith ...string) {
	t.Helper()
	args := []string{"entry", "create", "-socketPath", d.serverSock, "-parentID", d.agentID, "-spiffeID", d.ID(id),
		"-selector", "unix:path:" + exe, "-selector", fmt.Sprintf("unix:uid:%d", os.Getuid())}
	for _, td := range federatesWith {
		args = append(args, "-federatesWith", "spiffe://"+td)
	}
	if _, err := run(10*time.Second, d.serverBin, args...); err != nil {
		t.Fatal(err)
	}
}

// refreshFederation makes the server fetch partner's bundle from its bundle
// endpoint now (instead of at the next poll, up to a minute away).
func (d *spireDomain) refreshFederation(t *testing.T, partner *spireDomain) {
	t.Helper()
	waitFor(t, d.td+" fetches the bundle of "+partner.td+" from its bundle endpoint", 60*time.Second, func() error {
		_, err := run(15*time.Second, d.serverBin, "federation", "refresh", "-socketPath", d.serverSock, "-id", partner.td)
		return err
	})
	waitFor(t, d.td+" holds the bundle of "+partner.td, 10*time.Second, func() error {
		out, err := run(10*time.Second, d.serverBin, "bundle", "list", "-socketPath", d.serverSock, "-id", "spiffe://"+partner.td)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "BEGIN CERTIFICATE") {
			return errors.New("no federated bundle yet")
		}
		return nil
	})
}

// copyFile copies an executable, so a role runs from a path of its own.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
