//go:build ztcrash

package state

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Crash-test builds only (go build -tags ztcrash): ZT_WITNESS_CRASH_AT=
// "<step>:<n>" kills the process with SIGKILL the n-th time an atomic write
// reaches <step> (begin, written, synced, renamed, done).
var (
	crashStep  string
	crashAfter int64
	crashCount atomic.Int64
)

func init() {
	step, n, _ := strings.Cut(os.Getenv("ZT_WITNESS_CRASH_AT"), ":")
	crashStep = step
	crashAfter, _ = strconv.ParseInt(n, 10, 64)
	if crashAfter == 0 {
		crashAfter = 1
	}
}

func crashpoint(step string) {
	if step == crashStep && crashCount.Add(1) == crashAfter {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is delivered before anything else happens
	}
}
