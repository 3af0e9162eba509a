package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// applyEnvAndConfig fills every flag not given on the command line from the
// environment (ZTLOG_<NAME>) and then from the JSON config file, if any.
func applyEnvAndConfig(fs *flag.FlagSet, configPath string) error {
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
			return usageError{fmt.Errorf("config: %v", err)}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // 1000000 stays "1000000", not "1e+06"
		if err := dec.Decode(&file); err != nil {
			return usageError{fmt.Errorf("config %s: not a JSON object: %v", configPath, err)}
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
		env := "ZTLOG_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = usageError{fmt.Errorf("%s=%q: %v", env, v, err)}
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s := fmt.Sprint(v)
			if err := f.Value.Set(s); err != nil {
				firstErr = usageError{fmt.Errorf("config %s: %s=%q: %v", configPath, f.Name, s, err)}
			}
		}
	})
	return firstErr
}
