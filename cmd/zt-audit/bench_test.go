package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// BenchmarkAuditMillionRSS runs the zt-audit binary over a 1,000,000-entry
// log directory (written directly in the tlog-tiles layout by
// audittest.WriteLog, byte-identical to Tessera's) and reports the child
// process's peak resident memory (getrusage ru_maxrss) and its rate, for
// the full audit (every entry parsed, completeness checked) and the
// Merkle-only replay. Target: the full audit in at most 128 MiB. Run with
// -benchtime=1x.
func BenchmarkAuditMillionRSS(b *testing.B) {
	const n = 1_000_000
	bin := auditBinary(b)
	skey, vkey, err := ztlog.GenerateKey("example.com/zt-audit-bench")
	if err != nil {
		b.Fatal(err)
	}
	key, _ := ztlog.ParseKey(skey)
	dir := b.TempDir()
	start := time.Now()
	if _, err := audittest.WriteLog(filepath.Join(dir, "log"), key.Signer, audittest.DefaultScenario().Entries(n)); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote a %d-entry log in %s", n, time.Since(start).Round(time.Millisecond))
	pol := filepath.Join(dir, "trust.policy")
	os.WriteFile(pol, []byte("log "+vkey+"\nquorum none\n"), 0o644)
	for _, mode := range []struct{ name, flag string }{{"full", ""}, {"merkle", "--merkle-only"}} {
		b.Run(mode.name, func(b *testing.B) {
			var rss, rate float64
			for range b.N {
				args := []string{"audit", "--log", filepath.Join(dir, "log"), "--policy", pol, "--progress", "never", "--now", "2026-11-21T09:30:00Z"}
				if mode.flag != "" {
					args = append(args, mode.flag)
				}
				cmd := exec.Command(bin, args...)
				start := time.Now()
				out, err := cmd.CombinedOutput()
				el := time.Since(start)
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				rss = float64(ru.Maxrss) / 1024 // KiB on Linux
				rate = n / el.Seconds()
				b.Logf("%s: %.1f MiB peak RSS, %s (%.0f entries/s, %s user, %s sys)", mode.name, rss, el.Round(time.Millisecond), rate,
					time.Duration(ru.Utime.Nano()).Round(time.Millisecond), time.Duration(ru.Stime.Nano()).Round(time.Millisecond))
			}
			b.ReportMetric(rss, "peak-rss-MiB")
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(128, "target-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
	fmt.Fprint(os.Stderr)
}
