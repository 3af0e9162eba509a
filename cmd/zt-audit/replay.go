package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
)

// zt-audit replay and zt-audit policy-hash hand off to zt-replay, which
// links the policy engines (OPA, Cedar) that zt-audit keeps out of its
// trust base (ARCHITECTURE.md): the commands the auditor expects under
// zt-audit work, and zt-audit itself stays free of the engines.
//
//	zt-audit policy-hash ARGS...             = zt-replay policy-hash ARGS...
//	zt-audit replay --log L --index N ARGS... = zt-replay decision --log L --index N ARGS...
//	zt-audit replay --log L ARGS...           = zt-replay log --log L ARGS... (every decision)

func runPolicyHash(ctx context.Context, args []string) error {
	return handOff(ctx, append([]string{"policy-hash"}, args...))
}

func runReplay(ctx context.Context, args []string) error {
	sub := "log"
	if slices.ContainsFunc(args, func(a string) bool {
		return a == "--index" || a == "-index" || strings.HasPrefix(a, "--index=") || strings.HasPrefix(a, "-index=")
	}) {
		sub = "decision"
	}
	return handOff(ctx, append([]string{sub}, args...))
}

// handOff runs zt-replay (next to this executable, else on PATH) with the
// same standard streams, and keeps its verdict: its exit 1 (replayed
// different, or refused) is zt-audit's exit 1; anything else unusable is 2.
func handOff(ctx context.Context, args []string) error {
	bin, err := findReplay()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return cli.Fail(fmt.Errorf("zt-replay %s: the replay differed or was refused (above)", args[0]))
	default:
		return fmt.Errorf("zt-replay %s: %w", args[0], err)
	}
}

func findReplay() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "zt-replay")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("zt-replay")
	if err != nil {
		return "", errors.New("this command needs zt-replay, which links the policy engines zt-audit keeps out of its trust base: " +
			"install it next to zt-audit or on PATH (go install ./cmd/zt-replay, or make build)")
	}
	return p, nil
}
