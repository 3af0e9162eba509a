package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// launcherSource is a tiny program that runs its arguments as a command
// and prints the child's exit status, ru_maxrss (KiB), user and system
// time (ns), and its own peak RSS (VmHWM, KiB). Linux carries a launching
// process's peak RSS into its child's ru_maxrss across fork and exec, so
// zt-audit is launched from this small process rather than from the
// benchmark's own (which holds a million-entry log's worth of garbage).
const launcherSource = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

func main() {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Run()
	if cmd.ProcessState == nil {
		os.Exit(1)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	self, _ := os.ReadFile("/proc/self/status")
	var hwm int64
	for _, line := range strings.Split(string(self), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%d", &hwm)
		}
	}
	fmt.Printf("%d %d %d %d %d\n", cmd.ProcessState.ExitCode(), ru.Maxrss, hwm, ru.Utime.Nano(), ru.Stime.Nano())
}
`

func buildLauncher(b *testing.B) string {
	dir := b.TempDir()
	src := filepath.Join(dir, "launcher.go")
	if err := os.WriteFile(src, []byte(launcherSource), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "launcher")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the launcher: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkAuditMillionRSS runs the zt-audit binary over a 1,000,000-entry
// log directory (written directly in the tlog-tiles layout by
// audittest.WriteLog, byte-identical to Tessera's) and reports the child
// process's peak resident memory (getrusage ru_maxrss, measured through a
// small launcher process, see launcherSource) and its rate, for the full audit
// (every entry parsed, completeness checked) and the Merkle-only replay.
// "signatures-200k" audits a 200,000-entry log of signed statements with
// --spiffe-bundle (every attestation and statement verified), to show that
// signature checks add no memory that grows with the log.
// Target: the full audit in at most 128 MiB. Run with -benchtime=1x.
func BenchmarkAuditMillionRSS(b *testing.B) {
	const n, signedN = 1_000_000, 200_000
	bin := auditBinary(b)
	launcher := buildLauncher(b)
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
	// The signed log: every decision and result carries a real DSSE
	// statement (ECDSA P-256 SVIDs), audited with --spiffe-bundle.
	pki, err := audittest.NewPKI()
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if _, err := audittest.WriteLog(filepath.Join(dir, "signed"), key.Signer, pki.Entries(signedN)); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote a %d-entry signed log in %s", signedN, time.Since(start).Round(time.Millisecond))
	roots := filepath.Join(dir, "spiffe.pem")
	if err := pki.WriteRoots(roots); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name, log string
		n         float64
		flags     []string
	}{
		{"full", "log", n, []string{"--now", "2026-11-21T09:30:00Z"}},
		{"merkle", "log", n, []string{"--now", "2026-11-21T09:30:00Z", "--merkle-only"}},
		{"signatures-200k", "signed", signedN, []string{"--spiffe-bundle", roots}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var rss, rate, launcherMiB float64
			for range b.N {
				args := append([]string{"audit", "--log", filepath.Join(dir, mode.log), "--policy", pol, "--progress", "never"}, mode.flags...)
				cmd := exec.Command(launcher, append([]string{bin}, args...)...)
				start := time.Now()
				out, err := cmd.Output()
				el := time.Since(start)
				var code int
				var maxrss, launcher, utime, stime int64
				if _, perr := fmt.Sscanf(string(out), "%d %d %d %d %d", &code, &maxrss, &launcher, &utime, &stime); perr != nil || err != nil || code != 0 {
					b.Fatalf("zt-audit exit %d (%v, %v): %s", code, err, perr, out)
				}
				rss = float64(maxrss) / 1024 // KiB on Linux
				launcherMiB = float64(launcher) / 1024
				rate = mode.n / el.Seconds()
				b.Logf("%s: %.1f MiB peak RSS (launcher %.1f MiB), %s (%.0f entries/s, %s user, %s sys)", mode.name, rss, launcherMiB, el.Round(time.Millisecond), rate,
					time.Duration(utime).Round(time.Millisecond), time.Duration(stime).Round(time.Millisecond))
			}
			b.ReportMetric(launcherMiB, "launcher-rss-MiB")
			b.ReportMetric(rss, "peak-rss-MiB")
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(128, "target-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
