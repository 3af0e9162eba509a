package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// childEnv marks the helper process: the broker re-executes its own binary
// with this variable set, and Child takes over before anything else runs.
const childEnv = "_ZTLOG_SANDBOX_HELPER"

// File descriptors of the helper: the plan arrives on fd 3; fd 4 carries
// the helper's status back (close-on-exec, so a successful exec closes it).
const (
	planFD   = 3
	statusFD = 4
)

// Status bytes on the status pipe: 'X' right before exec; 'E' followed by
// a JSON childError when setup or exec failed.
const (
	statusExec  = 'X'
	statusError = 'E'
)

// plan is what the helper does, sent as JSON on fd 3.
type plan struct {
	// Path is the absolute path of the command, Argv its arguments
	// (Argv[0] as given), Env its whole environment, Dir its directory.
	Path string   `json:"path"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// Rlimits are set before exec.
	Rlimits []rlimit `json:"rlimits"`
	// Landlock, when set, is applied before exec.
	Landlock *landlockPlan `json:"landlock,omitempty"`
}

type rlimit struct {
	Resource int    `json:"resource"`
	Value    uint64 `json:"value"`
}

// landlockPlan is a Landlock ruleset.
type landlockPlan struct {
	// ABI is the Landlock ABI to use (the kernel's, capped at what
	// go-landlock knows).
	ABI int `json:"abi"`
	// FS grants: each path with whether it is a directory.
	Read      []fsPath `json:"read"`
	Write     []fsPath `json:"write"`
	ReadWrite []fsPath `json:"read_write"`
	// Net is "host" (TCP not handled), "deny" (no TCP bind or connect) or
	// "ports" (connect to Ports only).
	Net   string `json:"net"`
	Ports []int  `json:"ports"`
}

type fsPath struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir"`
}

// childError is the helper's report of a failure before the command ran.
type childError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Child runs the sandbox helper and never returns when this process is
// one; otherwise it returns at once. Every binary that runs sandboxes (zt,
// and test binaries through TestMain) calls it first thing in main.
func Child() {
	if os.Getenv(childEnv) == "" {
		return
	}
	// The status pipe is written with raw system calls, never through an
	// *os.File: its finalizer could close the descriptor under us.
	fail := func(class, format string, a ...any) {
		b, _ := json.Marshal(childError{Class: class, Message: fmt.Sprintf(format, a...)})
		unix.Write(statusFD, append([]byte{statusError}, b...))
		os.Exit(127)
	}
	syscall.CloseOnExec(statusFD)
	planFile := os.NewFile(planFD, "plan")
	raw, err := io.ReadAll(io.LimitReader(planFile, 1<<20))
	planFile.Close()
	runtime.KeepAlive(planFile)
	if err != nil {
		fail("sandbox_setup", "helper: reading the plan: %v", err)
	}
	var p plan
	if err := json.Unmarshal(raw, &p); err != nil {
		fail("sandbox_setup", "helper: plan: %v", err)
	}
	if err := unix.Chdir(p.Dir); err != nil {
		fail("sandbox_setup", "working directory %s: %v", p.Dir, err)
	}
	if p.Landlock != nil {
		if err := applyLandlock(p.Landlock); err != nil {
			fail("sandbox_setup", "landlock: %v", err)
		}
	}
	execve(&p, fail)
}

// execve sets the rlimits and execs the command. From the first rlimit on,
// nothing may allocate: a memory limit below what the helper's own runtime
// has reserved would make any allocation fatal. So everything is prepared
// first and the rest are raw system calls.
func execve(p *plan, fail func(class, format string, a ...any)) {
	argv0, err := syscall.BytePtrFromString(p.Path)
	if err != nil {
		fail("spawn_failed", "command path: %v", err)
	}
	argv, err := syscall.SlicePtrFromStrings(p.Argv)
	if err != nil {
		fail("spawn_failed", "arguments: %v", err)
	}
	envv, err := syscall.SlicePtrFromStrings(p.Env)
	if err != nil {
		fail("spawn_failed", "environment: %v", err)
	}
	limits := make([]unix.Rlimit, len(p.Rlimits))
	for i, l := range p.Rlimits {
		limits[i] = unix.Rlimit{Cur: l.Value, Max: l.Value}
	}
	notFound := []byte(`E{"class":"command_not_found","message":"exec: no such file (errno `)
	failed := append(make([]byte, 0, 256), `E{"class":"spawn_failed","message":"exec or setrlimit failed (errno `...)
	notFound = append(make([]byte, 0, len(notFound)+32), notFound...)
	execMark := []byte{statusExec}
	runtime.LockOSThread()
	debug.SetGCPercent(-1)
	// No allocation from here on.
	unix.RawSyscall(unix.SYS_WRITE, statusFD, uintptr(unsafe.Pointer(&execMark[0])), 1)
	var errno syscall.Errno
	for i := range limits {
		_, _, errno = unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(p.Rlimits[i].Resource), uintptr(unsafe.Pointer(&limits[i])), 0, 0, 0)
		if errno != 0 {
			break
		}
	}
	if errno == 0 {
		_, _, errno = unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(argv0)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
	}
	msg := failed
	if errno == syscall.ENOENT {
		msg = notFound
	}
	msg = strconv.AppendInt(msg, int64(errno), 10)
	msg = append(msg, ')', '"', '}')
	unix.RawSyscall(unix.SYS_WRITE, statusFD, uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)))
	unix.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
}

// landlockConfigs are go-landlock's configurations by ABI version.
var landlockConfigs = []landlock.Config{landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6,
	landlock.V7, landlock.V8, landlock.V9, landlock.V10, landlock.V11}

// landlockABI is the kernel's Landlock ABI version capped at what
// go-landlock knows (0: no Landlock).
func landlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return min(v, len(landlockConfigs))
}

// Write-only rights (write without read) for directories and files.
const (
	writeDirRights = ll.AccessFSWriteFile | ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeDir |
		ll.AccessFSMakeReg | ll.AccessFSMakeSym | ll.AccessFSMakeFifo | ll.AccessFSMakeSock | ll.AccessFSTruncate
	writeFileRights = ll.AccessFSWriteFile | ll.AccessFSTruncate
)

func applyLandlock(lp *landlockPlan) error {
	if lp.ABI < 1 || lp.ABI > len(landlockConfigs) {
		return fmt.Errorf("ABI %d is not one go-landlock knows", lp.ABI)
	}
	cfg := landlockConfigs[lp.ABI-1]
	var rules []landlock.Rule
	for _, p := range lp.Read {
		if p.Dir {
			rules = append(rules, landlock.RODirs(p.Path))
		} else {
			rules = append(rules, landlock.ROFiles(p.Path))
		}
	}
	for _, p := range lp.ReadWrite {
		if p.Dir {
			rules = append(rules, landlock.RWDirs(p.Path))
		} else {
			rules = append(rules, landlock.RWFiles(p.Path))
		}
	}
	for _, p := range lp.Write {
		rights := landlock.AccessFSSet(writeFileRights)
		if p.Dir {
			rights = landlock.AccessFSSet(writeDirRights)
		}
		// Only rights this ABI handles (truncate is ABI 3).
		rights &= cfg.HandledAccessFS
		rules = append(rules, landlock.PathAccess(rights, p.Path))
	}
	switch lp.Net {
	case "host":
		cfg.HandledAccessNet = 0
	case "deny", "ports":
		if cfg.HandledAccessNet == 0 {
			return fmt.Errorf("Landlock ABI %d cannot restrict TCP (needs 4)", lp.ABI)
		}
		for _, port := range lp.Ports {
			rules = append(rules, landlock.ConnectTCP(uint16(port)))
		}
	default:
		return fmt.Errorf("unknown network mode %q", lp.Net)
	}
	return cfg.Restrict(rules...)
}
