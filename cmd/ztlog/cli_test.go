package main

import (
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/cmd/internal/clitest"
)

// Every binary prints its version with --version and version, exit 0.
func TestVersion(t *testing.T) {
	for _, bin := range []struct{ path, name string }{{ztlogBin, "ztlog"}, {ztBin, "zt"}} {
		for _, arg := range []string{"--version", "version"} {
			r := clitest.Run(t, bin.path, nil, arg)
			if r.Code != 0 {
				t.Errorf("%s %s: exit %d (%s)", bin.name, arg, r.Code, r.Stderr)
			}
			if !strings.HasPrefix(r.Stdout, bin.name+" ") || !strings.Contains(r.Stdout, "(revision ") {
				t.Errorf("%s %s: %q, want %q then the version and revision", bin.name, arg, r.Stdout, bin.name+" ")
			}
		}
	}
}

// -h of every subcommand exits 0 with one-word placeholders, and dev's
// help is its own (and right about --data-dir).
func TestHelp(t *testing.T) {
	serve := clitest.Help(t, ztlogBin, "serve")
	dev := clitest.Help(t, ztlogBin, "dev")
	clitest.Help(t, ztlogBin, "keygen")
	clitest.Help(t, ztlogBin, "receipt-keygen")
	if dev == serve {
		t.Error("ztlog dev -h is the same text as ztlog serve -h")
	}
	if !strings.Contains(dev, "usage: ztlog dev") {
		t.Errorf("ztlog dev -h has no dev usage line: %q", dev[:min(200, len(dev))])
	}
	if !strings.Contains(dev, `(default ".ztlog-dev")`) || !strings.Contains(dev, "DIR/dev holds") {
		t.Error("ztlog dev -h does not say --data-dir defaults to .ztlog-dev and holds dev/ and log/")
	}
	if !strings.Contains(serve, "-key file") {
		t.Error("ztlog serve -h: --key's placeholder is not file")
	}
	for _, args := range [][]string{{"decide"}, {"run"}, {"broker"}, {"agents", "register"}, {"agents", "revoke"}, {"agents", "list"}, {"agents", "show"}} {
		clitest.Help(t, ztBin, args...)
	}
	for _, bin := range []string{ztlogBin, ztBin} {
		if r := clitest.Run(t, bin, nil, "--help"); r.Code != 0 {
			t.Errorf("%s --help: exit %d", bin, r.Code)
		}
	}
}

// A mistyped subcommand or flag gets a suggestion and exit status 2 (zt run: 64).
func TestDidYouMean(t *testing.T) {
	cases := []struct {
		bin  string
		args []string
		code int
		want string
	}{
		{ztlogBin, []string{"sreve"}, 2, `did you mean "serve"?`},
		{ztlogBin, []string{"serve", "--data-dri", "x"}, 2, "did you mean --data-dir?"},
		{ztlogBin, []string{"dev", "--lisen", "x"}, 2, "did you mean --listen?"},
		{ztBin, []string{"decied"}, 2, `did you mean "decide"?`},
		{ztBin, []string{"decide", "--actoin", "x"}, 2, "did you mean --action?"},
		{ztBin, []string{"run", "--resoruce", "x"}, exitRunUsageCode, "did you mean --resource?"},
		{ztBin, []string{"agents", "lsit"}, 2, `did you mean "list"?`},
	}
	for _, c := range cases {
		r := clitest.Run(t, c.bin, nil, c.args...)
		if r.Code != c.code {
			t.Errorf("%q: exit %d, want %d", c.args, r.Code, c.code)
		}
		if !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%q: stderr %q does not contain %q", c.args, r.Stderr, c.want)
		}
	}
}

// exitRunUsageCode is zt run's usage status (EX_USAGE).
const exitRunUsageCode = 64

// A ZTLOG_* variable that is no setting is warned about, with a suggestion.
func TestUnknownEnvironmentVariableWarned(t *testing.T) {
	r := clitest.Run(t, ztlogBin, []string{"ZTLOG_DATADIR=/nonexistent", "ZTLOG_LISTEN=127.0.0.1:1"}, "serve")
	if !strings.Contains(r.Stderr, "ZTLOG_DATADIR is not a setting") {
		t.Errorf("stderr %q does not warn about ZTLOG_DATADIR", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "did you mean ZTLOG_DATA_DIR?") {
		t.Errorf("stderr %q does not suggest ZTLOG_DATA_DIR", r.Stderr)
	}
	if strings.Contains(r.Stderr, "ZTLOG_LISTEN is not") {
		t.Errorf("stderr %q warns about ZTLOG_LISTEN, a setting", r.Stderr)
	}
}
