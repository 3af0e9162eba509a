package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

// Negative settings are refused, naming the setting, instead of running a
// service that looks ready and cannot commit (max pending -1 pushes back
// every append) or drops in-flight decisions at shutdown (a negative
// shutdown timeout).
func TestNegativeSettingsRefused(t *testing.T) {
	skey, _, err := ztlog.GenerateKey("example.com/settings")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*Config)
	}{
		{"max pending", func(c *Config) { c.MaxPending = -1 }},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = -time.Second }},
		{"batch max age", func(c *Config) { c.BatchMaxAge = -time.Millisecond }},
		{"checkpoint interval", func(c *Config) { c.CheckpointInterval = -time.Second }},
	} {
		cfg := Config{Storage: posix.Opener(posix.Config{Dir: filepath.Join(logtest.Dir(t), "log")}), Key: key}
		c.mod(&cfg)
		svc, err := New(context.Background(), cfg)
		if err == nil {
			svc.Log().Close(context.Background())
			t.Errorf("%s: a negative value was accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%s: refused with %q, want the setting named", c.name, err)
		}
	}
}
