// Package sandbox runs one command under a capability manifest
// (contract/capability) with real containment, and reports what happened:
// exit status, digests and sizes of its output, and the rules actually
// applied. It is the execution half of a broker (contract/broker); it knows
// nothing about receipts or logs.
//
// Three kinds of sandbox:
//
//   - Local (Linux): the broker re-executes its own binary as a small
//     helper (see Child) that chdirs to the workdir, sets rlimits, applies a
//     Landlock ruleset built from the manifest (filesystem grants; TCP
//     connect rules for an allow list of ports; signal and abstract-socket
//     scoping) and then execs the command. When the manifest blocks the
//     network, the helper runs in a network namespace of its own: under
//     bubblewrap (--unshare-net --unshare-pid --die-with-parent) when bwrap is
//     installed, else via CLONE_NEWNET. Landlock is used at the ABI the kernel
//     offers, never downgraded silently: a kernel without Landlock, or
//     without what the manifest needs, is a refusal.
//   - Nono: the manifest is mapped to `nono run` flags (Flags), each value
//     validated, and nono does the containment; the helper still sets the
//     rlimits and the broker the timeout.
//   - Unsafe: no containment at all, only rlimits and the timeout. Only with
//     an explicit --unsafe-no-sandbox, which the broker logs; the result
//     says sandbox kind "none".
//
// Anything that cannot be enforced is refused before any process is
// spawned (a *Refusal, with its class and reason). A process that started
// is always waited for, killed with its whole process group at the time
// limit, and reported.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/capability"
)

// Kind names a sandbox as results report it (attest.SandboxApplied.Kind).
type Kind string

// The kinds.
const (
	KindLandlockBwrap Kind = "landlock+bwrap" // Landlock, network namespace by bubblewrap
	KindLandlockNetns Kind = "landlock+netns" // Landlock, network namespace by CLONE_NEWNET
	KindLandlock      Kind = "landlock"       // Landlock, host network (not blocked)
	KindNono          Kind = "nono"
	KindNone          Kind = "none" // --unsafe-no-sandbox
)

// Spec is one command to run.
type Spec struct {
	// Manifest is enforced exactly; required.
	Manifest *capability.Manifest
	// Argv is the command and its arguments; Argv[0] must be on the
	// manifest's allow list.
	Argv []string
	// Stdin is the command's input (nil: empty).
	Stdin io.Reader
	// Stdout and Stderr receive a copy of the output as it is written (nil:
	// discarded); the digests and sizes are computed either way.
	Stdout, Stderr io.Writer
	// LookupEnv reads the broker's environment for the variables the
	// manifest passes (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
}

// Refusal is work refused before any process was spawned.
type Refusal struct {
	// Class is one of the attest.Error* classes.
	Class   string
	Message string
}

func (r *Refusal) Error() string { return "sandbox refused: " + r.Message }

func refuse(class, format string, a ...any) *Refusal {
	return &Refusal{Class: class, Message: fmt.Sprintf(format, a...)}
}

// IsRefusal reports whether err is a Refusal and returns it.
func IsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// Outcome is what happened to a command the sandbox tried to start.
type Outcome struct {
	// Started is true when the command itself was executed (exec
	// succeeded inside the sandbox).
	Started bool
	// Exit describes how it ended (nil when it did not start).
	Exit *attest.Exit
	// Error says why it did not start (class and message).
	Error *attest.ErrorInfo
	// StartedAt and FinishedAt bracket the attempt.
	StartedAt, FinishedAt time.Time
	// Stdout and Stderr are the digests and sizes of all output.
	Stdout, Stderr attest.Output
	// Files are the manifest's outputs after the run.
	Files []attest.FileOutput
	// Sandbox is what was applied.
	Sandbox attest.SandboxApplied
}

// Outcome classes of a result.
func (o *Outcome) Outcome() string {
	switch {
	case !o.Started || o.Exit == nil:
		return attest.OutcomeError
	case o.Exit.Status == 0 && o.Exit.Signal == "" && !o.Exit.TimedOut:
		return attest.OutcomeOK
	}
	return attest.OutcomeFailed
}
