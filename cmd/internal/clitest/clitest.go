// Package clitest checks the command-line conventions every ztlog binary
// keeps (help, version, suggestions), by running the built binary. For
// tests only.
package clitest

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Result is one run of a binary.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs bin with args and env (added to none: a clean environment but
// PATH and HOME) and returns its exit status and output.
func Run(t *testing.T, bin string, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return r
}

// Help runs `bin args... -h` and checks that it exits 0 and prints the
// help on stdout with a usage line, and that every flag's placeholder is
// one word (a backquoted phrase in a flag's usage becomes its placeholder:
// "-key ztlog keygen" is what a stray pair of backquotes prints). It
// returns the help.
func Help(t *testing.T, bin string, args ...string) string {
	t.Helper()
	r := Run(t, bin, nil, append(args, "-h")...)
	if r.Code != 0 {
		t.Errorf("%q -h: exit %d, want 0 (stderr %s)", args, r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "usage: ") {
		t.Errorf("%q -h: no usage line on stdout: %q", args, r.Stdout)
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		header, _, _ := strings.Cut(line, "\t") // a one-letter flag has its usage after a tab
		if f := strings.Fields(header); len(f) > 2 {
			t.Errorf("%q -h: flag line %q: the placeholder is %q, not one word", args, line, strings.Join(f[1:], " "))
		}
	}
	return r.Stdout
}
