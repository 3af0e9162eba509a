package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A negative poll interval (zt-witness --config-poll -1s) is refused by
// Watch with an error naming it, instead of reaching time.NewTicker in a
// goroutine, which panics.
func TestWatchRefusesNegativePoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.json")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"logs":[{"origin":"a.example/log","verifier_key":%q}]}`, logKey(t, "a.example/log"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Watch(ctx, path, -time.Second, nil); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("Watch with poll -1s = %v, want a refusal", err)
	}
	if _, err := Watch(ctx, path, 0, nil); err != nil {
		t.Fatalf("Watch with the default poll: %v", err)
	}
}
