package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root, where the Makefile and Containerfile are.
const repoRoot = ".."

// imageBinaries are the binaries the image carries, in /usr/local/bin.
var imageBinaries = []string{"ztlog", "zt", "zt-audit", "zt-witness"}

// podmanArgs are the global options podman needs on these machines: crun
// and the systemd cgroup manager do not work here (DESIGN.md).
var podmanArgs = []string{"--runtime", "runc", "--cgroup-manager=cgroupfs"}

func podman(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "podman", append(append([]string{}, podmanArgs...), args...)...)
}

// podmanUsable says why podman cannot run containers here, or "".
func podmanUsable() string {
	if _, err := exec.LookPath("podman"); err != nil {
		return "podman not installed (.ci/deps.d/podman.sh installs it)"
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "runc not installed, which podman needs here (.ci/deps.d/podman.sh installs it)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := podman(ctx, "info", "--format", "{{.Host.OCIRuntime.Name}}").CombinedOutput(); err != nil {
		return fmt.Sprintf("podman cannot run here: podman info: %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
}

// gitRevision is the commit `make image` stamps, as the Makefile computes it.
func gitRevision(t *testing.T) string {
	out, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// builtImage is what `make image` (or image-context) produced for a test.
type builtImage struct {
	ctxDir   string // the build context: the static binaries and the rest
	ref      string // podman image reference, "" when podman cannot run
	tag      string
	revision string
}

// buildImage runs `make image` into a temporary context directory, or only
// `make image-context` when podman cannot run (reason says why). The image
// is removed at the end of the test.
func buildImage(t *testing.T, withPodman bool) builtImage {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed: the image is built by `make image`")
	}
	b := builtImage{ctxDir: t.TempDir(), tag: fmt.Sprintf("imagetest-%d", os.Getpid()), revision: gitRevision(t)}
	target := "image-context"
	if withPodman {
		target = "image"
		b.ref = "localhost/ztlog-imagetest:" + b.tag
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-C", repoRoot, target,
		"IMAGE_CTX="+b.ctxDir, "IMAGE=localhost/ztlog-imagetest", "IMAGE_TAG="+b.tag)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
	if withPodman {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			podman(ctx, "rmi", "--force", b.ref).Run()
		})
	}
	return b
}

// TestImage builds the image and checks what it promises: static binaries
// stamped with the version, no shell, a non-root user, OCI labels, and a
// `ztlog dev` in it that answers `zt decide` on the host.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the image build compiles every binary statically")
	}
	reason := podmanUsable()
	b := buildImage(t, reason == "")

	t.Run("static binaries", func(t *testing.T) {
		for _, name := range imageBinaries {
			f, err := elf.Open(filepath.Join(b.ctxDir, name))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s has a program interpreter (PT_INTERP): dynamically linked, cannot run FROM scratch", name)
				}
			}
			libs, err := f.ImportedLibraries()
			if err != nil {
				t.Fatalf("%s: imported libraries: %v", name, err)
			}
			if len(libs) != 0 {
				t.Errorf("%s needs shared libraries %q", name, libs)
			}
			f.Close()
		}
	})

	t.Run("version stamped", func(t *testing.T) {
		for _, name := range imageBinaries {
			for _, arg := range []string{"version", "--version"} {
				out, err := exec.Command(filepath.Join(b.ctxDir, name), arg).Output()
				if err != nil {
					t.Fatalf("%s %s: %v", name, arg, err)
				}
				want := fmt.Sprintf("%s %s (revision %s", name, b.tag, b.revision)
				if !strings.HasPrefix(string(out), want) {
					t.Errorf("%s %s = %q, want it to start with %q", name, arg, out, want)
				}
			}
		}
	})

	if reason != "" {
		t.Skip(reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("config", func(t *testing.T) {
		out, err := podman(ctx, "image", "inspect", b.ref).Output()
		if err != nil {
			t.Fatalf("podman image inspect: %v", err)
		}
		var inspect []struct {
			Config struct {
				User       string
				Entrypoint []string
				Labels     map[string]string
			}
		}
		if err := json.Unmarshal(out, &inspect); err != nil || len(inspect) != 1 {
			t.Fatalf("podman image inspect: %v: %s", err, out)
		}
		cfg := inspect[0].Config
		if cfg.User != "65532:65532" {
			t.Errorf("User = %q, want 65532:65532 (numeric, not root)", cfg.User)
		}
		if got := cfg.Labels["org.opencontainers.image.revision"]; got != b.revision {
			t.Errorf("label revision = %q, want %q", got, b.revision)
		}
		if got := cfg.Labels["org.opencontainers.image.version"]; got != b.tag {
			t.Errorf("label version = %q, want %q", got, b.tag)
		}
		if got := cfg.Labels["org.opencontainers.image.source"]; got != "https://github.com/zt-infra/ztlog" {
			t.Errorf("label source = %q", got)
		}
	})

	t.Run("filesystem", func(t *testing.T) { testImageFiles(t, ctx, b) })

	t.Run("no shell", func(t *testing.T) {
		for _, sh := range []string{"/bin/sh", "/bin/bash", "/busybox/sh"} {
			out, err := podman(ctx, "run", "--rm", "--network", "none", "--entrypoint", sh, b.ref, "-c", "true").CombinedOutput()
			if err == nil {
				t.Errorf("podman run --entrypoint %s succeeded: the image has a shell\n%s", sh, out)
			}
		}
	})

	t.Run("binaries run in the image", func(t *testing.T) {
		for _, name := range imageBinaries {
			out, err := podman(ctx, "run", "--rm", "--network", "none", "--entrypoint", "/usr/local/bin/"+name, b.ref, "version").Output()
			if err != nil {
				t.Fatalf("%s version in the image: %v", name, err)
			}
			if want := name + " " + b.tag + " "; !strings.HasPrefix(string(out), want) {
				t.Errorf("%s version in the image = %q, want prefix %q", name, out, want)
			}
		}
	})

	t.Run("dev answers zt decide", func(t *testing.T) { testImageDev(t, ctx, b) })
}

// testImageDev starts `ztlog dev` in the image on the host network with a
// data directory mounted from the host, then decides with the host's zt and
// the SVIDs dev wrote.
func testImageDev(t *testing.T, ctx context.Context, b builtImage) {
	dataDir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	name := fmt.Sprintf("ztlog-imagetest-%d-%d", os.Getpid(), port)
	// :U chowns the volume to the container's user (65532), who must write it.
	out, err := podman(ctx, "run", "--detach", "--name", name, "--network", "host",
		"--volume", dataDir+":/data:U", b.ref, "dev", "--data-dir", "/data", "--listen", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("podman run ztlog dev: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		podman(ctx, "rm", "--force", "--time", "5", name).Run()
	})
	logs := func() string {
		out, _ := podman(ctx, "logs", name).CombinedOutput()
		return string(out)
	}
	if err := waitReady(ctx, "http://"+addr+"/readyz", 90*time.Second); err != nil {
		t.Fatalf("ztlog dev in the image: %v\ncontainer log:\n%s", err, logs())
	}

	// The server process runs as 65532, not as root.
	pidOut, err := podman(ctx, "inspect", "--format", "{{.State.Pid}}", name).Output()
	if err != nil {
		t.Fatalf("podman inspect: %v", err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pidOut)) + "/status")
	if err != nil {
		t.Fatalf("container process status: %v", err)
	}
	if uid := statusField(string(status), "Uid:"); uid != "65532\t65532\t65532\t65532" {
		t.Errorf("container process Uid (real, effective, saved, fs) = %q, want 65532 for all", uid)
	}
	// What it wrote in the volume is the container user's.
	fi, err := os.Stat(filepath.Join(dataDir, "dev", "agent.pem"))
	if err != nil {
		t.Fatalf("dev did not write the agent SVID into the mounted data dir: %v", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 65532 {
		t.Errorf("agent.pem owner uid = %d, want 65532", st.Uid)
	}

	zt := filepath.Join(t.TempDir(), "zt")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", zt, "../cmd/zt").CombinedOutput(); err != nil {
		t.Fatalf("go build zt: %v\n%s", err, out)
	}
	decide := func(action, resource string) (int, string) {
		cmd := exec.CommandContext(ctx, zt, "decide", "--server", "https://"+addr,
			"--svid", filepath.Join(dataDir, "dev", "agent"), "--action", action, "--resource", resource)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatalf("zt decide: %v", err)
		}
		return 0, string(out)
	}
	code, out2 := decide("demo.echo", "demo://hello")
	if code != 0 {
		t.Fatalf("zt decide demo.echo: exit %d, want 0 (allow)\n%s\ncontainer log:\n%s", code, out2, logs())
	}
	if !strings.Contains(out2, "allow") {
		t.Errorf("zt decide demo.echo printed no allow:\n%s", out2)
	}
	// A real policy decides: the example policy denies this one.
	if code, out := decide("aws.ec2.terminate_instances", "i-demo"); code != 1 {
		t.Errorf("zt decide aws.ec2.terminate_instances: exit %d, want 1 (deny)\n%s", code, out)
	}
}

// testImageFiles reads the image's filesystem (podman export) and checks
// what is in it: a writable sticky /tmp, /data owned by 65532, the CA
// certificates and the user, the binaries, and no shell of any name.
func testImageFiles(t *testing.T, ctx context.Context, b builtImage) {
	out, err := podman(ctx, "create", b.ref).Output()
	if err != nil {
		t.Fatalf("podman create: %v", err)
	}
	id := strings.TrimSpace(string(out))
	defer podman(context.Background(), "rm", id).Run()
	tarball, err := podman(ctx, "export", id).Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	files := map[string]*tar.Header{}
	contents := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the exported image: %v", err)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		files[name] = h
		if name == "/etc/passwd" || name == "/etc/group" {
			contents[name], _ = io.ReadAll(tr)
		}
	}
	for name := range files {
		switch path.Base(name) {
		case "sh", "bash", "dash", "ash", "busybox", "toybox":
			t.Errorf("the image holds a shell: %s", name)
		}
	}
	if h := files["/tmp"]; h == nil {
		t.Error("no /tmp")
	} else if mode := h.FileInfo().Mode(); mode.Perm() != 0o777 || mode&os.ModeSticky == 0 {
		t.Errorf("/tmp mode %v, want drwxrwxrwt", mode)
	}
	if h := files["/data"]; h == nil {
		t.Error("no /data")
	} else if h.Uid != 65532 {
		t.Errorf("/data owner uid %d, want 65532", h.Uid)
	}
	if h := files["/etc/ssl/certs/ca-certificates.crt"]; h == nil || h.Size == 0 {
		t.Error("no CA certificates at /etc/ssl/certs/ca-certificates.crt")
	}
	if !strings.Contains(string(contents["/etc/passwd"]), ":65532:65532:") {
		t.Errorf("/etc/passwd names no user 65532:\n%s", contents["/etc/passwd"])
	}
	if !strings.Contains(string(contents["/etc/group"]), ":65532:") {
		t.Errorf("/etc/group names no group 65532:\n%s", contents["/etc/group"])
	}
	for _, name := range imageBinaries {
		if h := files["/usr/local/bin/"+name]; h == nil {
			t.Errorf("no /usr/local/bin/%s", name)
		} else if h.FileInfo().Mode().Perm()&0o111 == 0 {
			t.Errorf("/usr/local/bin/%s is not executable", name)
		}
	}
}

func statusField(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(v)
		}
	}
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

// waitReady polls url until it answers 200 or d passes.
func waitReady(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within %s: %s", url, d, last)
}
