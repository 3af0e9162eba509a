// Package logtest helps tests that open an evidence log.
package logtest

import (
	"os"
	"testing"
	"time"
)

// Dir returns a temporary directory for a POSIX log, removed when the test
// ends. Tessera's background goroutines (checkpoint publisher, garbage
// collector) notice a log's Close only at their next step and may still be
// writing a file then, which makes t.TempDir's removal fail the test; Dir
// retries the removal briefly instead.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ztlog-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("remove %s: %v", dir, err)
	})
	return dir
}
