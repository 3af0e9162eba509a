package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serveFlagsFrom parses args as ztlog serve does, with the environment and
// config file applied.
func serveFlagsFrom(t *testing.T, args ...string) (*serveFlags, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f := new(serveFlags)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f, applyEnvAndConfig(fs, f.config)
}

// The config file can be named in the environment (ZTLOG_CONFIG), as every
// other setting can; the command line still wins.
func TestConfigFileFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ztlog.json")
	os.WriteFile(cfg, []byte(`{"max-pending": 7, "listen": "127.0.0.1:9999"}`), 0o600)
	t.Setenv("ZTLOG_CONFIG", cfg)
	f, err := serveFlagsFrom(t)
	if err != nil || f.maxPending != 7 || f.listen != "127.0.0.1:9999" {
		t.Fatalf("ZTLOG_CONFIG=%s: %v, max-pending %d, listen %s", cfg, err, f.maxPending, f.listen)
	}
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"max-pending": 9}`), 0o600)
	if f, err := serveFlagsFrom(t, "--config", other); err != nil || f.maxPending != 9 {
		t.Fatalf("--config over ZTLOG_CONFIG: %v, max-pending %d", err, f.maxPending)
	}
}

// Integers keep their text: 1000000 is not refused as "1e+06"; data after
// the object is refused.
func TestConfigNumbersAndTrailingData(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ztlog.json")
	os.WriteFile(cfg, []byte(`{"max-pending": 1000000}`), 0o600)
	if f, err := serveFlagsFrom(t, "--config", cfg); err != nil || f.maxPending != 1000000 {
		t.Fatalf(`{"max-pending": 1000000}: %v (max-pending %d)`, err, f.maxPending)
	}
	os.WriteFile(cfg, []byte(`{"max-pending": 5} {"max-pending": 6}`), 0o600)
	if _, err := serveFlagsFrom(t, "--config", cfg); err == nil || !strings.Contains(err.Error(), "after the object") {
		t.Fatalf("two objects: %v, want a refusal", err)
	}
}
