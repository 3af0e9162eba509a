package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type badLine struct{ error }

func (badLine) UsageError() bool { return true }

func TestRunExitStatuses(t *testing.T) {
	var got []string
	cmds := map[string]Command{
		"ok": func(_ context.Context, args []string) error { got = args; return nil },
		"fail": func(context.Context, []string) error {
			return errors.New("disk full")
		},
		"usage": func(context.Context, []string) error {
			return fmt.Errorf("serve: %w", badLine{errors.New("--listen missing")})
		},
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"help"}, 0},
		{[]string{"version"}, 0},
		{[]string{"--version"}, 0},
		{[]string{"ok", "a", "b"}, 0},
		{[]string{"fail"}, 1},
		{[]string{"usage"}, 2},
	} {
		if st := run("t", "usage\n", cmds, c.args, nil); st != c.want {
			t.Errorf("run(%q) = %d, want %d", c.args, st, c.want)
		}
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("ok got args %q, want [a b]", got)
	}
}

func TestRunOwnExitStatuses(t *testing.T) {
	cmds := map[string]Command{"check": func(context.Context, []string) error { return errors.New("mismatch") }}
	var got error
	exit := func(err error) int { got = err; return 7 }
	if st := run("t", "usage\n", cmds, []string{"check"}, exit); st != 7 || got == nil || got.Error() != "mismatch" {
		t.Errorf("own exit: status %d, error %v", st, got)
	}
	if st := run("t", "usage\n", cmds, []string{"nope"}, exit); st != 2 {
		t.Errorf("unknown subcommand with own exit: %d, want 2", st)
	}
}

func TestVerdictExit(t *testing.T) {
	exit := VerdictExit("checker")
	if got := exit(nil); got != 0 {
		t.Errorf("no error: exit %d, want 0", got)
	}
	if got := exit(fmt.Errorf("wrapped: %w", Fail(errors.New("proof does not verify")))); got != 1 {
		t.Errorf("a verdict: exit %d, want 1", got)
	}
	if got := exit(errors.New("no such file")); got != 2 {
		t.Errorf("unusable input: exit %d, want 2", got)
	}
	inner := errors.New("inner")
	if !errors.Is(Fail(inner), inner) {
		t.Error("Fail does not unwrap to its cause")
	}
}
