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
		{[]string{"ok", "a", "b"}, 0},
		{[]string{"fail"}, 1},
		{[]string{"usage"}, 2},
	} {
		if st := run("t", "usage\n", cmds, c.args); st != c.want {
			t.Errorf("run(%q) = %d, want %d", c.args, st, c.want)
		}
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("ok got args %q, want [a b]", got)
	}
}
