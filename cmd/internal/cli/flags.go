package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/zt-infra/ztlog/internal/version"
)

// Help is a subcommand's help text: the synopsis line and what it does,
// printed before the flags by -h.
type Help struct {
	Usage string // e.g. "ztlog dev [flags]"
	About string // one or more sentences; wrapped by the author
}

// flagError is a mistake in the flags: exit status 2.
type flagError struct{ error }

func (flagError) UsageError() bool { return true }

// Parse parses args into fs. With -h or --help it prints the help (h, then
// the flags) to stdout and returns flag.ErrHelp, which Main turns into exit
// status 0. A flag that is not defined is an error (a UsageError, exit 2)
// that suggests the nearest defined flag; so is a bad value.
func Parse(fs *flag.FlagSet, args []string, h Help) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		PrintHelp(os.Stdout, fs, h)
		return flag.ErrHelp
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg = fmt.Sprintf("unknown flag --%s", name)
		if s := Suggest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
	}
	return flagError{fmt.Errorf("%s; see %s -h", msg, fs.Name())}
}

// PrintHelp writes h and the flags of fs to w.
func PrintHelp(w io.Writer, fs *flag.FlagSet, h Help) {
	if h.Usage != "" {
		fmt.Fprintf(w, "usage: %s\n", h.Usage)
	}
	if h.About != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(h.About, "\n"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// Suggest is the candidate nearest to word (edit distance at most 2, or
// one that starts with word, or that word starts with), or "".
func Suggest(word string, candidates []string) string {
	best, bestD := "", 3
	sort.Strings(candidates)
	for _, c := range candidates {
		d := distance(word, c)
		if len(word) >= 3 && (strings.HasPrefix(c, word) || strings.HasPrefix(word, c)) && d > 1 {
			d = 2
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// IsVersion says whether arg asks for the version: --version, -version or
// version.
func IsVersion(arg string) bool { return arg == "--version" || arg == "-version" || arg == "version" }

// PrintVersion writes the one version line of the binary name to w.
func PrintVersion(w io.Writer, name string) { fmt.Fprintln(w, version.Get().String(name)) }

// UnknownCommand is the error text for an unknown subcommand, with a
// suggestion.
func UnknownCommand(name, cmd string, cmds []string) string {
	msg := fmt.Sprintf("%s: unknown command %q", name, cmd)
	if s := Suggest(cmd, cmds); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// Commands are the names of cmds.
func Commands(cmds map[string]Command) []string {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WarnUnknownEnv warns on stderr about each environment variable with
// prefix (e.g. "ZTLOG_") that is not one of known: a typo would otherwise
// be ignored silently. It returns the unknown names.
func WarnUnknownEnv(w io.Writer, name, prefix string, known []string, environ []string) []string {
	var unknown []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		found := false
		for _, n := range known {
			if n == k {
				found = true
				break
			}
		}
		if found {
			continue
		}
		unknown = append(unknown, k)
		msg := fmt.Sprintf("%s: warning: %s is not a setting of %s and is ignored", name, k, name)
		if s := Suggest(k, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		fmt.Fprintln(w, msg)
	}
	return unknown
}
