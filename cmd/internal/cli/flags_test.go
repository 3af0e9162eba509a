package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	cases := []struct{ word, want string }{
		{"serv", "serve"},
		{"sreve", "serve"},
		{"keygne", "keygen"},
		{"data-dri", "data-dir"},
		{"zzzzzz", ""},
	}
	cands := []string{"serve", "dev", "keygen", "data-dir", "receipt-keygen"}
	for _, c := range cases {
		if got := Suggest(c.word, cands); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func TestParseUnknownFlagSuggests(t *testing.T) {
	fs := flag.NewFlagSet("ztlog serve", flag.ContinueOnError)
	fs.String("data-dir", "", "")
	err := Parse(fs, []string{"--data-dri", "x"}, Help{})
	var u UsageError
	if !errors.As(err, &u) || !u.UsageError() {
		t.Fatalf("unknown flag: %v, want a usage error", err)
	}
	if !strings.Contains(err.Error(), "did you mean --data-dir?") {
		t.Errorf("unknown flag: %q does not suggest --data-dir", err)
	}
}

func TestParseHelpIsErrHelp(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if err := Parse(fs, []string{"-h"}, Help{Usage: "x"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestWarnUnknownEnv(t *testing.T) {
	var w bytes.Buffer
	got := WarnUnknownEnv(&w, "ztlog", "ZTLOG_", []string{"ZTLOG_DATA_DIR", "ZTLOG_LISTEN"},
		[]string{"ZTLOG_DATADIR=/x", "ZTLOG_LISTEN=:1", "HOME=/root"})
	if len(got) != 1 || got[0] != "ZTLOG_DATADIR" {
		t.Fatalf("unknown = %q, want [ZTLOG_DATADIR]", got)
	}
	if !strings.Contains(w.String(), "did you mean ZTLOG_DATA_DIR?") {
		t.Errorf("warning %q does not suggest ZTLOG_DATA_DIR", w.String())
	}
}

func TestRunVersionAndHelpOfSubcommand(t *testing.T) {
	cmds := map[string]Command{"serve": func(_ context.Context, args []string) error {
		return Parse(flag.NewFlagSet("t serve", flag.ContinueOnError), args, Help{Usage: "t serve"})
	}}
	if st := run("t", "usage\n", cmds, []string{"--version"}, nil); st != 0 {
		t.Errorf("--version: %d, want 0", st)
	}
	if st := run("t", "usage\n", cmds, []string{"version"}, nil); st != 0 {
		t.Errorf("version: %d, want 0", st)
	}
	if st := run("t", "usage\n", cmds, []string{"serve", "-h"}, nil); st != 0 {
		t.Errorf("serve -h: %d, want 0", st)
	}
	if st := run("t", "usage\n", cmds, []string{"serve", "--nope"}, nil); st != 2 {
		t.Errorf("serve --nope: %d, want 2", st)
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	if got := UnknownCommand("ztlog", "serv", []string{"serve", "dev"}); !strings.Contains(got, `did you mean "serve"?`) {
		t.Errorf("UnknownCommand = %q", got)
	}
}
