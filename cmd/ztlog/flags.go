package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
)

// applyEnvAndConfig fills every flag not given on the command line from the
// environment (ZTLOG_<NAME>) and then from the JSON config file, if any.
func applyEnvAndConfig(fs *flag.FlagSet, configPath string) error {
	cli.WarnUnknownEnv(os.Stderr, "ztlog", "ZTLOG_", knownEnv(), os.Environ())
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if v, ok := os.LookupEnv("ZTLOG_CONFIG"); ok && !set["config"] && fs.Lookup("config") != nil {
		// The config file itself can be named in the environment too.
		configPath = v
	}
	var file map[string]any
	if configPath != "" {
		raw, err := os.ReadFile(configPath)
		if err != nil {
			return usageError{fmt.Errorf("config: %w", err)}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // 1000000 stays "1000000", not "1e+06"
		if err := dec.Decode(&file); err != nil {
			return usageError{fmt.Errorf("config %s: not a JSON object: %w", configPath, err)}
		}
		if _, err := dec.Token(); err != io.EOF {
			return usageError{fmt.Errorf("config %s: not a JSON object: data after the object", configPath)}
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return usageError{fmt.Errorf("config %s: unknown setting %q (settings are the flag names of `ztlog %s -h`)", configPath, k, fs.Name())}
			}
		}
	}
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || firstErr != nil || f.Name == "config" {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = usageError{fmt.Errorf("%s=%q: %w", env, v, err)}
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s := fmt.Sprint(v)
			if err := f.Value.Set(s); err != nil {
				firstErr = usageError{fmt.Errorf("config %s: %s=%q: %w", configPath, f.Name, s, err)}
			}
		}
	})
	return firstErr
}

// envName is the environment variable of a flag: ZTLOG_<NAME>, dashes as
// underscores.
func envName(flagName string) string {
	return "ZTLOG_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// knownEnv are the ZTLOG_* variables ztlog reads: one per flag of serve
// (--read-only included), dev and daal, ZTLOG_CONFIG, and ZTLOG_BIN (the SDK test suites' path to
// this binary).
func knownEnv() []string {
	known := []string{"ZTLOG_CONFIG", "ZTLOG_BIN", envName("read-only")}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var s serveFlags
	s.register(fs)
	d := flag.NewFlagSet("", flag.ContinueOnError)
	var df daalFlags
	df.register(d)
	for _, set := range []*flag.FlagSet{fs, d} {
		set.VisitAll(func(f *flag.Flag) { known = append(known, envName(f.Name)) })
	}
	return known
}
