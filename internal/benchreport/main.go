// Command benchreport runs the benchmarks behind issue 20's targets (and
// the MCP gateway's added latency), and writes a markdown report: every
// figure beside its same-run baseline, pass/fail against each target, the
// machine's load while it ran, and a CPU breakdown per decision from a
// profile. A benchmark that is absent or fails is reported as missing.
//
//	go run ./internal/benchreport [-quick] [-out docs/bench-report.md] [-dir bin/bench-report] [-runs 5] [-steps decisions,latency2000,log,audit,mcp] [-render-only]
//
// `make bench-report` runs it (QUICK=1 for -quick).
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "docs/bench-report.md", "the report to write")
	dir := flag.String("dir", "bin/bench-report", "where raw outputs and profiles go")
	quick := flag.Bool("quick", os.Getenv("QUICK") == "1", "a smoke run: fewer configurations, one latency run (also QUICK=1)")
	runs := flag.Int("runs", 0, "runs of the latency-at-2,000/s benchmark (default 5, 1 with -quick)")
	only := flag.String("steps", "", "run only these steps (comma-separated IDs: decisions,latency2000,log,audit,mcp)")
	renderOnly := flag.Bool("render-only", false, "run nothing: write the report from the raw outputs already in -dir")
	flag.Parse()
	if err := run(*out, *dir, *quick, *runs, *only, *renderOnly); err != nil {
		fmt.Fprintln(os.Stderr, "bench-report:", err)
		os.Exit(1)
	}
}

func run(out, dir string, quick bool, runs int, only string, renderOnly bool) error {
	if runs <= 0 {
		runs = 5
		if quick {
			runs = 1
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := machine{CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), Revision: revision(), Quick: quick}
	if !renderOnly {
		m.Started, m.LoadBefore = time.Now(), loadAvg()
	}
	var rep report
	var all results
	for _, s := range steps(quick, runs) {
		if only != "" && !contains(strings.Split(only, ","), s.ID) {
			continue
		}
		var sr stepRun
		if renderOnly {
			sr = loadStep(s, dir)
			if m.Started.IsZero() || (!sr.Started.IsZero() && sr.Started.Before(m.Started)) {
				m.Started, m.LoadBefore = sr.Started, sr.LoadBefore
				m.Revision = cmp.Or(sr.Revision, "unknown") + " (as run; report rendered again with -render-only)"
			}
			if end := sr.Started.Add(sr.Duration); end.After(m.Finished) {
				m.Finished, m.LoadAfter = end, sr.LoadAfter
			}
		} else {
			sr = runStep(s, dir)
		}
		if len(sr.Results) > 0 {
			all = append(all, sr.Results...)
		}
		rep.Steps = append(rep.Steps, sr)
		if s.Profile {
			rep.ProfileOf = fmt.Sprintf("`%s` (%s)", s.Bench, filepath.Join(dir, s.ID+".prof"))
			if samples, err := readProfile(filepath.Join(dir, s.ID+".prof")); err == nil {
				rep.Breakdown, rep.Total = breakdown(samples)
				rep.Leaves = topLeaves(samples, 15)
			} else {
				rep.ProfileOf += ": " + err.Error()
			}
		}
	}
	for _, s := range rep.Steps {
		if _, cpu := parseBenchFile(s.Raw); cpu != "" {
			m.CPUModel = cpu
		}
	}
	rep.PerDec, _ = all.metric(benchDecisions+"/clients=256", "cpu-us/decision")
	rep.Checks = checks(all)
	if !renderOnly {
		m.LoadAfter, m.Finished = loadAvg(), time.Now()
	}
	rep.Machine = m
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	render(f, rep)
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench-report: wrote %s (raw outputs in %s)\n", out, dir)
	for _, c := range rep.Checks {
		fmt.Fprintf(os.Stderr, "  %-7s %s: %s\n", c.Verdict, c.Target, c.Figure)
	}
	return nil
}

// runStep runs one go test invocation, its output to dir/ID.txt and to
// stderr.
func runStep(s step, dir string) stepRun {
	raw := filepath.Join(dir, s.ID+".txt")
	args := []string{"test", "-run", "^$", "-bench", s.Bench, "-benchtime", "1x", "-count", fmt.Sprint(s.Count), "-timeout", s.Timeout.String()}
	if s.Profile {
		args = append(args, "-cpuprofile", filepath.Join(dir, s.ID+".prof"), "-o", filepath.Join(dir, s.ID+".test"))
	}
	args = append(args, s.Pkg)
	sr := stepRun{step: s, Raw: raw, Command: "go " + strings.Join(quoteArgs(args), " ")}
	fmt.Fprintf(os.Stderr, "bench-report: %s: %s\n", s.ID, sr.Command)
	f, err := os.Create(raw)
	if err != nil {
		sr.Err = err.Error()
		return sr
	}
	defer f.Close()
	cmd := exec.Command(goCmd(), args...)
	cmd.Stdout = io.MultiWriter(f, os.Stderr)
	cmd.Stderr = cmd.Stdout
	sr.Started, sr.LoadBefore, sr.Revision = time.Now(), loadAvg(), revision()
	if err := cmd.Run(); err != nil {
		sr.Err = err.Error()
	}
	sr.Duration, sr.LoadAfter = time.Since(sr.Started), loadAvg()
	sr.Results, _ = parseBenchFile(raw)
	sr.Failed = failedRunsFile(raw)
	if meta, err := json.MarshalIndent(sr, "", "  "); err == nil {
		os.WriteFile(filepath.Join(dir, s.ID+".meta.json"), append(meta, '\n'), 0o644)
	}
	return sr
}

// loadStep reads what an earlier run of s left in dir.
func loadStep(s step, dir string) stepRun {
	sr := stepRun{step: s, Raw: filepath.Join(dir, s.ID+".txt")}
	meta, err := os.ReadFile(filepath.Join(dir, s.ID+".meta.json"))
	if err == nil {
		err = json.Unmarshal(meta, &sr)
	}
	if err != nil {
		sr.Err = fmt.Sprintf("not run (no %s.meta.json in %s)", s.ID, dir)
		return sr
	}
	sr.Results, _ = parseBenchFile(sr.Raw)
	sr.Failed = failedRunsFile(sr.Raw)
	return sr
}

func failedRunsFile(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return failedRuns(f)
}

func parseBenchFile(path string) (results, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ""
	}
	defer f.Close()
	return parseBench(f)
}

// readProfile reads a CPU profile's samples through `go tool pprof`.
func readProfile(path string) ([]sample, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no profile: %w", err)
	}
	out, err := exec.Command(goCmd(), "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces %s: %w", path, err)
	}
	s := parseTraces(strings.NewReader(string(out)))
	if len(s) == 0 {
		return nil, fmt.Errorf("profile %s has no samples", path)
	}
	return s, nil
}

// topLeaves returns the n functions with the most flat CPU.
func topLeaves(samples []sample, n int) []share {
	var leaves []sample
	for _, s := range samples {
		if len(s.Frames) > 0 {
			leaves = append(leaves, sample{CPU: s.CPU, Frames: []string{s.Frames[0]}})
		}
	}
	by := map[string]time.Duration{}
	var total time.Duration
	for _, s := range leaves {
		by[s.Frames[0]] += s.CPU
		total += s.CPU
	}
	var out []share
	for f, d := range by {
		out = append(out, share{Category: f, CPU: d, Fraction: float64(d) / float64(total)})
	}
	sortShares(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func revision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " (with uncommitted changes)"
	}
	return rev
}

func goCmd() string {
	if g := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(g) {
		return g
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$*|() ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
