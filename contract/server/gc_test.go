package server

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "150") // restored after the test, including its absence
	TuneGC(nil)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, TuneGC changed the GC percent to %d", got)
	}

	os.Unsetenv("GOGC")
	TuneGC(nil)
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("without GOGC, GC percent = %d, want %d", got, DefaultGCPercent)
	}
}
