package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zt-infra/ztlog/internal/text"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/capability"
	"golang.org/x/sys/unix"
)

// Mode chooses the containment.
type Mode string

// The modes.
const (
	// ModeLocal: Landlock, a network namespace when the network is blocked.
	ModeLocal Mode = "local"
	// ModeNono: the nono CLI.
	ModeNono Mode = "nono"
	// ModeUnsafe: no containment (--unsafe-no-sandbox).
	ModeUnsafe Mode = "unsafe"
)

// Config configures a Runner.
type Config struct {
	Mode Mode
	// Helper is the executable that calls Child() first thing in main
	// (default: this process's own executable).
	Helper string
	// Bwrap is the bubblewrap binary for network namespaces: "" looks up
	// bwrap in PATH; "none" never uses it (CLONE_NEWNET instead).
	Bwrap string
	// Nono is the nono binary (default: nono in PATH), and NonoOptions its
	// options (ModeNono).
	Nono        string
	NonoOptions NonoOptions
	// WaitDelay bounds how long output is drained after the process ends
	// (default 2s).
	WaitDelay time.Duration
	Logger    *slog.Logger
}

// Runner runs commands under manifests. Safe for concurrent use.
type Runner struct {
	cfg         Config
	abi         int    // Landlock ABI (ModeLocal)
	bwrap       string // bubblewrap path, "" when not used
	bwrapVer    string
	nonoVersion string
}

// Errors of New when the chosen sandbox cannot run here.
var (
	// ErrNoLandlock: ModeLocal on a kernel without Landlock
	// (CONFIG_SECURITY_LANDLOCK, lsm=landlock). The runner refuses to run
	// unsandboxed; choose ModeNono, or ModeUnsafe explicitly.
	ErrNoLandlock = errors.New("sandbox: this kernel has no Landlock (CONFIG_SECURITY_LANDLOCK, lsm=landlock); the local sandbox refuses to run unsandboxed")
	// ErrNoNono: ModeNono without the nono executable (https://nono.sh).
	ErrNoNono = errors.New("sandbox: nono is not installed (https://nono.sh)")
)

// New checks that the mode can work here and records the versions of the
// mechanisms. A local runner without Landlock is an error: refusing to run
// unsandboxed is the point.
func New(cfg Config) (*Runner, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WaitDelay <= 0 {
		cfg.WaitDelay = 2 * time.Second
	}
	if cfg.Helper == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: own executable: %w", err)
		}
		cfg.Helper = exe
	}
	r := &Runner{cfg: cfg}
	switch cfg.Mode {
	case ModeLocal:
		if r.abi = landlockABI(); r.abi < 1 {
			return nil, ErrNoLandlock
		}
		if cfg.Bwrap != "none" {
			path := cfg.Bwrap
			if path == "" {
				path, _ = exec.LookPath("bwrap")
			}
			if path != "" {
				out, err := exec.Command(path, "--version").Output()
				if err != nil {
					if cfg.Bwrap != "" {
						return nil, fmt.Errorf("sandbox: %s --version: %w", path, err)
					}
				} else {
					r.bwrap, r.bwrapVer = path, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "bubblewrap"))
				}
			}
		}
	case ModeNono:
		path := cfg.Nono
		if path == "" {
			var err error
			if path, err = exec.LookPath("nono"); err != nil {
				return nil, ErrNoNono
			}
		}
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			return nil, fmt.Errorf("sandbox: %s --version: %w", path, err)
		}
		r.cfg.Nono = path
		r.nonoVersion = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nono"))
		if err := cfg.NonoOptions.validate(); err != nil {
			return nil, err
		}
	case ModeUnsafe:
		cfg.Logger.Warn("SANDBOX DISABLED (unsafe mode): commands run with the broker's own privileges, limited only by rlimits and the timeout")
	default:
		return nil, fmt.Errorf("sandbox: unknown mode %q (local, nono or unsafe)", cfg.Mode)
	}
	return r, nil
}

// Describe names the runner and its mechanisms, for logs.
func (r *Runner) Describe() string {
	switch r.cfg.Mode {
	case ModeLocal:
		s := fmt.Sprintf("local: landlock ABI %d", r.abi)
		if r.bwrap != "" {
			s += ", bubblewrap " + r.bwrapVer + " (" + r.bwrap + ")"
		} else {
			s += ", CLONE_NEWNET"
		}
		return s
	case ModeNono:
		return "nono " + r.nonoVersion + " (" + r.cfg.Nono + ")"
	}
	return "NONE (unsafe mode: no sandbox)"
}

// prepared is a command ready to start.
type prepared struct {
	plan    plan
	kind    Kind
	version string
	applied []string
	// wrapper runs before the helper (bwrap, nono), or nil.
	wrapper []string
	netns   bool // CLONE_NEWNET
	caps    string
	timeout time.Duration
}

// Check reports, without spawning anything, whether spec can run: a nil
// error, or a *Refusal.
func (r *Runner) Check(spec *Spec) error {
	_, err := r.prepare(spec)
	return err
}

func (r *Runner) prepare(spec *Spec) (*prepared, error) {
	m := spec.Manifest
	if m == nil {
		return nil, refuse(attest.ErrorSandboxSetup, "no capability manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, refuse(attest.ErrorSandboxSetup, "%v", err)
	}
	caps, err := m.Digest()
	if err != nil {
		return nil, refuse(attest.ErrorSandboxSetup, "manifest digest: %v", err)
	}
	if len(spec.Argv) == 0 {
		return nil, refuse(attest.ErrorCommandNotAllowed, "no command")
	}
	lookup := spec.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := []string{}
	for _, name := range m.Env {
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	pathVar, ok := lookup("PATH")
	for _, e := range env {
		if v, found := strings.CutPrefix(e, "PATH="); found {
			pathVar, ok = v, true
		}
	}
	if !ok {
		pathVar = "/usr/local/bin:/usr/bin:/bin"
	}
	path, err := resolveCommand(spec.Argv[0], m.Commands, pathVar)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(m.Workdir); err != nil || !st.IsDir() {
		return nil, refuse(attest.ErrorSandboxSetup, "workdir %s is not a directory on this broker: %v", m.Workdir, err)
	}
	p := &prepared{caps: caps, timeout: time.Duration(m.Limits.TimeoutSeconds) * time.Second,
		plan: plan{Path: path, Argv: spec.Argv, Env: env, Dir: m.Workdir, Rlimits: rlimits(m)}}
	p.applied = append(p.applied, "command "+path, "workdir "+m.Workdir)
	for _, e := range m.Env {
		p.applied = append(p.applied, "env "+e)
	}
	p.applied = append(p.applied, "limit.timeout "+p.timeout.String())
	for _, l := range p.plan.Rlimits {
		p.applied = append(p.applied, fmt.Sprintf("limit.%s %d", rlimitNames[l.Resource], l.Value))
	}

	switch r.cfg.Mode {
	case ModeLocal:
		if err := r.prepareLocal(m, p); err != nil {
			return nil, err
		}
	case ModeNono:
		flags, err := Flags(m, r.cfg.NonoOptions, os.Stat)
		if err != nil {
			return nil, refuse(attest.ErrorSandboxSetup, "%v", err)
		}
		p.kind, p.version = KindNono, "nono-"+r.nonoVersion
		// The helper sets the rlimits and execs nono, which runs the
		// command in its sandbox: nono run FLAGS -- PATH ARGS...
		argv := append([]string{r.cfg.Nono, "run"}, flags...)
		argv = append(append(argv, "--", path), spec.Argv[1:]...)
		p.plan.Path, p.plan.Argv = r.cfg.Nono, argv
		for _, f := range flags {
			if strings.HasPrefix(f, "--") {
				p.applied = append(p.applied, "nono "+f)
			} else {
				p.applied[len(p.applied)-1] += " " + f
			}
		}
	case ModeUnsafe:
		p.kind = KindNone
		p.applied = append(p.applied, "UNSAFE no sandbox")
	}
	return p, nil
}

func (r *Runner) prepareLocal(m *capability.Manifest, p *prepared) error {
	lp := &landlockPlan{ABI: r.abi}
	for _, l := range []struct {
		name  string
		paths []string
		into  *[]fsPath
	}{{"fs.read", m.Filesystem.Read, &lp.Read}, {"fs.write", m.Filesystem.Write, &lp.Write}, {"fs.read_write", m.Filesystem.ReadWrite, &lp.ReadWrite}} {
		for _, path := range l.paths {
			st, err := os.Stat(path)
			if errors.Is(err, os.ErrNotExist) {
				// Nothing to grant; nothing there to reach either.
				p.applied = append(p.applied, l.name+" "+path+" (absent)")
				continue
			}
			if err != nil {
				return refuse(attest.ErrorSandboxSetup, "%s %s: %v", l.name, path, err)
			}
			if l.name != "fs.read" {
				// Landlock grants what the path resolves to. A symbolic link
				// on a writable path (one an earlier run could plant in its
				// workdir) would carry write access somewhere the manifest,
				// and the strict check of it, never named.
				if real, err := filepath.EvalSymlinks(path); err != nil || real != path {
					return refuse(attest.ErrorSandboxSetup, "%s %s resolves through a symbolic link (to %s): write access is granted only to paths that are what they name", l.name, path, real)
				}
			}
			*l.into = append(*l.into, fsPath{Path: path, Dir: st.IsDir()})
			p.applied = append(p.applied, l.name+" "+path)
		}
	}
	p.version = fmt.Sprintf("landlock-abi-%d", r.abi)
	switch m.Network.Mode {
	case capability.NetBlocked:
		if r.abi < 4 {
			return refuse(attest.ErrorSandboxSetup, "the network is blocked, and Landlock ABI %d cannot restrict TCP (needs 4); refusing rather than relying on the namespace alone", r.abi)
		}
		lp.Net = "deny"
		if r.bwrap != "" {
			p.kind = KindLandlockBwrap
			p.version += " bubblewrap-" + r.bwrapVer
			p.wrapper = []string{r.bwrap, "--dev-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "--"}
			p.applied = append(p.applied, "net.blocked namespace (bubblewrap --unshare-net)", "net.tcp deny (landlock)", "pid namespace (bubblewrap --unshare-pid)")
		} else {
			p.kind = KindLandlockNetns
			p.netns = true
			p.applied = append(p.applied, "net.blocked namespace (CLONE_NEWNET)", "net.tcp deny (landlock)")
		}
	case capability.NetAllow:
		if len(m.Network.Domains) > 0 {
			return refuse(attest.ErrorSandboxSetup, "the local broker cannot enforce an allow list of domains (it has no filtering proxy): %s; use the nono broker, or allow ports only", strings.Join(m.Network.Domains, ", "))
		}
		if r.abi < 4 {
			return refuse(attest.ErrorSandboxSetup, "an allow list of ports needs Landlock ABI 4, this kernel has %d", r.abi)
		}
		lp.Net, lp.Ports = "ports", m.Network.Ports
		p.kind = KindLandlock
		for _, port := range m.Network.Ports {
			p.applied = append(p.applied, "net.tcp connect "+strconv.Itoa(port)+" (landlock)")
		}
	case capability.NetUnrestricted:
		lp.Net = "host"
		p.kind = KindLandlock
		p.applied = append(p.applied, "net.unrestricted")
	}
	if r.abi >= 6 {
		p.applied = append(p.applied, "scope signals and abstract unix sockets (landlock)")
	}
	if len(p.wrapper) == 0 && r.bwrap != "" {
		// A process the command detaches (setsid, a double fork) leaves
		// the process group the time limit kills, and would run on after
		// the result says the work was stopped: in bubblewrap's PID
		// namespace it dies with the run.
		p.version += " bubblewrap-" + r.bwrapVer
		p.wrapper = []string{r.bwrap, "--dev-bind", "/", "/", "--unshare-pid", "--die-with-parent", "--"}
		p.applied = append(p.applied, "pid namespace (bubblewrap --unshare-pid)")
	}
	p.plan.Landlock = lp
	return nil
}

var rlimitNames = map[int]string{unix.RLIMIT_AS: "memory", unix.RLIMIT_CPU: "cpu_seconds", unix.RLIMIT_NPROC: "processes",
	unix.RLIMIT_NOFILE: "open_files", unix.RLIMIT_FSIZE: "file_size", unix.RLIMIT_CORE: "core"}

func rlimits(m *capability.Manifest) []rlimit {
	l := m.Limits
	out := []rlimit{{unix.RLIMIT_CORE, 0}}
	if l.MemoryBytes > 0 {
		out = append(out, rlimit{unix.RLIMIT_AS, uint64(l.MemoryBytes)})
	}
	if l.CPUSeconds > 0 {
		out = append(out, rlimit{unix.RLIMIT_CPU, uint64(l.CPUSeconds)})
	}
	if l.Processes > 0 {
		out = append(out, rlimit{unix.RLIMIT_NPROC, uint64(l.Processes)})
	}
	if l.OpenFiles > 0 {
		out = append(out, rlimit{unix.RLIMIT_NOFILE, uint64(l.OpenFiles)})
	}
	if l.FileSizeBytes > 0 {
		out = append(out, rlimit{unix.RLIMIT_FSIZE, uint64(l.FileSizeBytes)})
	}
	return out
}

// resolveCommand finds argv0 as the broker will exec it and checks the
// allow list: argv0 is listed as written, or resolves to a listed absolute
// path (symbolic links followed on both sides).
func resolveCommand(argv0 string, allowed []string, pathVar string) (string, error) {
	if argv0 == "" || controlRE.MatchString(argv0) || len(argv0) > 4096 {
		return "", refuse(attest.ErrorCommandNotAllowed, "command %q is empty, too long or has control characters", truncate(argv0, 80))
	}
	var path string
	if strings.Contains(argv0, "/") {
		if !filepath.IsAbs(argv0) {
			return "", refuse(attest.ErrorCommandNotAllowed, "command %q: give a bare name or an absolute path", truncate(argv0, 80))
		}
		path = argv0
	} else {
		for _, dir := range filepath.SplitList(pathVar) {
			if !filepath.IsAbs(dir) {
				continue
			}
			c := filepath.Join(dir, argv0)
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				path = c
				break
			}
		}
	}
	listed := false
	for _, a := range allowed {
		if a == argv0 || (path != "" && sameFile(a, path)) {
			listed = true
			break
		}
	}
	if !listed {
		return "", refuse(attest.ErrorCommandNotAllowed, "command %q is not on the manifest's allow list (%s)", truncate(argv0, 80), strings.Join(allowed, ", "))
	}
	if path == "" {
		return "", refuse(attest.ErrorCommandNotFound, "command %q is not in PATH %s", truncate(argv0, 80), pathVar)
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return "", refuse(attest.ErrorCommandNotFound, "command %s is not an executable file: %v", path, err)
	}
	return path, nil
}

func sameFile(listed, path string) bool {
	if !filepath.IsAbs(listed) {
		return false
	}
	if listed == path {
		return true
	}
	a, err1 := filepath.EvalSymlinks(listed)
	b, err2 := filepath.EvalSymlinks(path)
	return err1 == nil && err2 == nil && a == b
}

// Run runs spec. A *Refusal means nothing was spawned. Otherwise the
// Outcome says whether the command started and how it ended; ctx ending
// kills the process group like the time limit does.
func (r *Runner) Run(ctx context.Context, spec *Spec) (*Outcome, error) {
	p, err := r.prepare(spec)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Sandbox: attest.SandboxApplied{Kind: string(p.kind), Version: p.version, Capabilities: p.caps, Applied: p.applied}}
	stdout, stderr := newDigester(spec.Stdout), newDigester(spec.Stderr)
	defer func() {
		o.Stdout, o.Stderr = stdout.output(), stderr.output()
		o.Files = outputFiles(spec.Manifest)
	}()

	planR, planW, err := os.Pipe()
	if err != nil {
		return nil, refuse(attest.ErrorSpawn, "pipe: %v", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		planR.Close()
		planW.Close()
		return nil, refuse(attest.ErrorSpawn, "pipe: %v", err)
	}
	defer statusR.Close()

	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	argv := append(append([]string{}, p.wrapper...), r.cfg.Helper)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{childEnv + "=1"}
	cmd.Dir = spec.Manifest.Workdir
	cmd.Stdin = spec.Stdin
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{planR, statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.netns {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
		if os.Geteuid() != 0 {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
			cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
			cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
		}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = r.cfg.WaitDelay

	// Pdeathsig is tied to the thread that forks: keep it alive until the
	// process is reaped, so the sandbox dies with the broker and only then.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	o.StartedAt = time.Now()
	err = cmd.Start()
	planR.Close()
	statusW.Close()
	if err != nil {
		planW.Close()
		o.FinishedAt = time.Now()
		o.Error = &attest.ErrorInfo{Class: attest.ErrorSpawn, Message: fmt.Sprintf("start %s: %v", argv[0], err)}
		if p.netns {
			o.Error.Class = attest.ErrorSandboxSetup
			o.Error.Message = fmt.Sprintf("network namespace (CLONE_NEWNET): %v; install bubblewrap or run the broker with the privilege to create namespaces", err)
		}
		return o, nil
	}
	b, _ := json.Marshal(&p.plan)
	planW.Write(b)
	planW.Close()
	status, _ := io.ReadAll(io.LimitReader(statusR, 64<<10))
	waitErr := cmd.Wait()
	o.FinishedAt = time.Now()

	switch {
	case bytes.IndexByte(status, statusError) < 0 && bytes.IndexByte(status, statusExec) >= 0:
		o.Started = true
	case bytes.IndexByte(status, statusError) >= 0:
		var ce childError
		json.Unmarshal(status[bytes.IndexByte(status, statusError)+1:], &ce)
		if ce.Class == "" {
			ce = childError{Class: attest.ErrorSandboxSetup, Message: "the sandbox helper failed: " + truncate(string(status), 200)}
		}
		if m := errnoRE.FindStringSubmatch(ce.Message); m != nil {
			n, _ := strconv.Atoi(m[1])
			ce.Message += ": " + syscall.Errno(n).Error()
		}
		o.Error = &attest.ErrorInfo{Class: ce.Class, Message: ce.Message}
		return o, nil
	default:
		// The helper never reported: the wrapper (bwrap, nono) or the
		// helper itself failed before the command could start.
		o.Error = &attest.ErrorInfo{Class: attest.ErrorSandboxSetup,
			Message: fmt.Sprintf("the sandbox (%s) ended before the command started: %v", argv[0], waitErr)}
		return o, nil
	}
	o.Exit = exitOf(cmd.ProcessState, ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded))
	return o, nil
}

func exitOf(ps *os.ProcessState, deadline bool) *attest.Exit {
	e := &attest.Exit{Status: -1}
	if ps == nil {
		return e
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		e.Signal = unix.SignalName(ws.Signal())
		if e.Signal == "" {
			e.Signal = "signal " + strconv.Itoa(int(ws.Signal()))
		}
	default:
		e.Status = ps.ExitCode()
	}
	e.TimedOut = deadline
	if e.Status == -1 && e.Signal == "" {
		e.Signal = "unknown"
	}
	return e
}

// digester hashes and counts what passes through, copying it to w.
type digester struct {
	h hash.Hash
	n int64
	w io.Writer
}

func newDigester(w io.Writer) *digester { return &digester{h: sha256.New(), w: w} }

func (d *digester) Write(b []byte) (int, error) {
	d.h.Write(b)
	d.n += int64(len(b))
	if d.w != nil {
		d.w.Write(b) // a slow or broken copy must not stop the digest
	}
	return len(b), nil
}

func (d *digester) output() attest.Output {
	return attest.Output{Digest: "sha256:" + hex.EncodeToString(d.h.Sum(nil)), Size: d.n}
}

// outputFiles digests the manifest's output files, opened beneath workdir
// without following symbolic links (the sandboxed command could have
// planted one pointing elsewhere).
func outputFiles(m *capability.Manifest) []attest.FileOutput {
	if len(m.Outputs) == 0 {
		return nil
	}
	dir, err := unix.Open(m.Workdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		out := make([]attest.FileOutput, len(m.Outputs))
		for i, o := range m.Outputs {
			out[i] = attest.FileOutput{Path: o}
		}
		return out
	}
	defer unix.Close(dir)
	var out []attest.FileOutput
	for _, rel := range m.Outputs {
		fo := attest.FileOutput{Path: rel}
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
		if err == nil {
			f := os.NewFile(uintptr(fd), rel)
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				h := sha256.New()
				if n, err := io.Copy(h, f); err == nil {
					fo.Digest, fo.Size = "sha256:"+hex.EncodeToString(h.Sum(nil)), n
				}
			}
			f.Close()
		}
		out = append(out, fo)
	}
	return out
}

var (
	controlRE = regexp.MustCompile(`[\x00-\x1f\x7f]`)
	errnoRE   = regexp.MustCompile(`errno (\d+)\)$`)
)

func truncate(s string, n int) string {
	return text.Cut(controlRE.ReplaceAllString(s, "?"), n)
}

// Refused is the outcome of work that was refused before it was spawned:
// not started, the refusal as the error, empty outputs, and the sandbox
// the runner would have used.
func (r *Runner) Refused(spec *Spec, ref *Refusal, now time.Time) *Outcome {
	empty := attest.Output{Digest: "sha256:" + hex.EncodeToString(sha256.New().Sum(nil))}
	o := &Outcome{StartedAt: now, FinishedAt: now, Stdout: empty, Stderr: empty,
		Error: &attest.ErrorInfo{Class: ref.Class, Message: truncate(ref.Message, 1024)}}
	o.Sandbox.Applied = []string{}
	if spec.Manifest != nil {
		o.Sandbox.Capabilities, _ = spec.Manifest.Digest()
	}
	if o.Sandbox.Capabilities == "" {
		o.Sandbox.Capabilities = empty.Digest
	}
	switch r.cfg.Mode {
	case ModeLocal:
		o.Sandbox.Kind, o.Sandbox.Version = string(KindLandlock), fmt.Sprintf("landlock-abi-%d", r.abi)
		if spec.Manifest != nil && spec.Manifest.Network.Mode == capability.NetBlocked {
			o.Sandbox.Kind = string(KindLandlockNetns)
			if r.bwrap != "" {
				o.Sandbox.Kind, o.Sandbox.Version = string(KindLandlockBwrap), o.Sandbox.Version+" bubblewrap-"+r.bwrapVer
			}
		}
	case ModeNono:
		o.Sandbox.Kind, o.Sandbox.Version = string(KindNono), "nono-"+r.nonoVersion
	default:
		o.Sandbox.Kind = string(KindNone)
	}
	return o
}
