package server

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector target ztlog serve runs with
// unless GOGC is set. The decision path allocates a few hundred short-lived
// objects per decision (TLS records, JSON, the policy engine's terms) over
// a small live heap, so Go's default of 100 spends about a fifth of the
// CPU per decision collecting; 400 trades up to 4x the (small) live heap
// for that CPU (contract/gate BenchmarkDecisions reports cpu-us/decision).
// Set GOGC (and GOMEMLIMIT) in the environment to choose otherwise.
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent when the environment does not set GOGC,
// and reports the setting in force.
func TuneGC(logger *slog.Logger) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		if logger != nil {
			logger.Info("garbage collector", "gogc", v, "from", "GOGC")
		}
		return
	}
	debug.SetGCPercent(DefaultGCPercent)
	if logger != nil {
		logger.Info("garbage collector", "gogc", DefaultGCPercent, "from", "default (set GOGC to change)")
	}
}
