// Command zt-witness is ztlog's C2SP tlog-witness: it cosigns the
// checkpoints of the logs it is configured for, serves the latest one it
// cosigned for each, and cross-checks partner logs and peer witnesses.
//
//	zt-witness keygen   --name NAME --out FILE [--algorithm ed25519|ml-dsa-44]
//	zt-witness serve    --config FILE --key FILE [--key FILE] --state DIR [--listen ADDR]
//	zt-witness federate --config FILE --state DIR [--once]
//
// Every flag can also be given as an environment variable ZTWITNESS_<FLAG>
// (dashes as underscores, e.g. ZTWITNESS_STATE); the command line wins.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
)

const usage = `zt-witness: a C2SP tlog-witness for ztlog and its federation partners

usage:
  zt-witness keygen   --name NAME --out FILE [--algorithm ed25519|ml-dsa-44]
                      create a witness key; prints the verifier key for logs' policies
  zt-witness serve    --config FILE --key FILE --state DIR [--listen ADDR]
                      cosign checkpoints (POST /add-checkpoint) and serve them
                      (GET /<sha256(origin)>/checkpoint); zt-witness serve -h for flags
  zt-witness federate --config FILE --state DIR [--once]
                      cross-check partner logs and peer witnesses; file split-view evidence
`

func main() {
	cli.Main("zt-witness", usage, map[string]cli.Command{
		"keygen":   func(_ context.Context, args []string) error { return runKeygen(args) },
		"serve":    runServe,
		"federate": runFederate,
	})
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func (usageError) UsageError() bool { return true }

func (e usageError) Unwrap() error { return e.error }

// parseFlags parses args, then fills every flag not given from the
// environment (ZTWITNESS_<NAME>).
func parseFlags(fs *flag.FlagSet, args []string, h cli.Help) error {
	if err := cli.Parse(fs, args, h); err != nil {
		return err
	}
	var known []string
	fs.VisitAll(func(f *flag.Flag) { known = append(known, envName(f.Name)) })
	cli.WarnUnknownEnv(os.Stderr, "zt-witness", "ZTWITNESS_", known, os.Environ())
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", fs.Name(), fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || firstErr != nil {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = usageError{fmt.Errorf("%s=%q: %w", env, v, err)}
			}
		}
	})
	return firstErr
}

// envName is the environment variable of a flag: ZTWITNESS_<NAME>.
func envName(flagName string) string {
	return "ZTWITNESS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, strings.Split(s, ",")...); return nil }
