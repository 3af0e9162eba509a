// Package cli is the small part every ztlog command line shares: picking
// the subcommand, a context cancelled by SIGINT/SIGTERM, and the exit
// statuses (0 done, 1 failed, 2 the command line was wrong).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// UsageError is a mistake in the command line: exit status 2. A command
// marks its own error type with a UsageError method returning true.
type UsageError interface {
	error
	UsageError() bool
}

// Command runs one subcommand with the arguments after its name.
type Command func(ctx context.Context, args []string) error

// Main runs the subcommand named by os.Args[1] and exits: 2 with the usage
// text for a missing or unknown subcommand or a UsageError, 1 with the
// error for any other failure, 0 otherwise. `NAME version` and
// `NAME --version` print the build's version line (internal/version).
func Main(name, usage string, cmds map[string]Command) {
	os.Exit(run(name, usage, cmds, os.Args[1:], nil))
}

// MainExit is Main for a command whose exit statuses are its own: exit
// reports the subcommand's error (nil included) and returns the status. A
// missing or unknown subcommand still exits 2 with the usage text.
func MainExit(name, usage string, cmds map[string]Command, exit func(error) int) {
	os.Exit(run(name, usage, cmds, os.Args[1:], exit))
}

func run(name, usage string, cmds map[string]Command, args []string, exit func(error) int) int {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch {
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Print(usage)
		return 0
	case IsVersion(args[0]):
		PrintVersion(os.Stdout, name)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s\n\n%s", UnknownCommand(name, args[0], append(Commands(cmds), "version", "help")), usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd(ctx, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the help was asked for, and printed
	}
	if exit != nil {
		return exit(err)
	}
	if err == nil {
		return 0
	}
	if u, ok := errors.AsType[UsageError](err); ok && u.UsageError() {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s: error: %v\n", name, err)
	return 1
}

// Failed marks a verdict, not a fault: a verification that failed, a
// replay that disagreed. VerdictExit gives it exit status 1.
type Failed struct{ error }

// Fail wraps err as a verdict.
func Fail(err error) error { return Failed{err} }

func (f Failed) Unwrap() error { return f.error }

// VerdictExit is the exit status of an offline checker named name: 0 for
// no error, 1 (printed as FAILED) for a Failed verdict, 2 for anything
// else (the input was unusable or could not be read).
func VerdictExit(name string) func(error) int {
	return func(err error) int {
		if err == nil {
			return 0
		}
		var f Failed
		if errors.As(err, &f) {
			fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", name, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
}
