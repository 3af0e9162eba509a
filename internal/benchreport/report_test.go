package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func readResults(t *testing.T) results {
	t.Helper()
	f, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, cpu := parseBench(f)
	if cpu != "Intel(R) Xeon(R) Processor @ 2.80GHz" {
		t.Errorf("cpu = %q", cpu)
	}
	return rs
}

func TestParseBench(t *testing.T) {
	rs := readResults(t)
	if len(rs) != 5 {
		t.Fatalf("%d results, want 5", len(rs))
	}
	if rs[0].Name != "BenchmarkDecisions/clients=256" {
		t.Errorf("name = %q, want the -2 suffix cut", rs[0].Name)
	}
	if v, _ := rs.metric("BenchmarkDecisions/clients=256", "decisions/s"); v != 5265 {
		t.Errorf("decisions/s = %v, want 5265", v)
	}
	if n := len(rs.all("BenchmarkDecisionLatencyAt2000/commit-delay=0s")); n != 2 {
		t.Errorf("%d latency runs, want 2 (one per -count)", n)
	}
}

func byTarget(cs []check, prefix string) *check {
	for i := range cs {
		if strings.HasPrefix(cs[i].Target, prefix) {
			return &cs[i]
		}
	}
	return nil
}

func TestChecks(t *testing.T) {
	cs := checks(readResults(t))
	for _, tc := range []struct {
		prefix string
		want   verdict
	}{
		{"≥ 10,000 decisions/s", fail},
		{"≥ 0.75x bare Tessera", fail},
		{"≤ 160 µs CPU", fail},
		{"p99 ≤ 15 ms at 2,000", fail},
		{"log append p99", fail},
		{"whole-log audit", missing},
		{"MCP gateway added p50 ≤ decision p50 + 1 ms (1 ", missing},
	} {
		c := byTarget(cs, tc.prefix)
		if c == nil {
			t.Errorf("no check %q", tc.prefix)
			continue
		}
		if c.Verdict != tc.want {
			t.Errorf("%s: %s, want %s (%+v)", tc.prefix, c.Verdict, tc.want, c)
		}
	}
	lat := byTarget(cs, "p99 ≤ 15 ms")
	if lat.Figure != "13.7, 16.2 ms" {
		t.Errorf("latency figure %q, want both default-setting runs", lat.Figure)
	}
	log := byTarget(cs, "log append p99")
	if !strings.Contains(log.Figure, "1.76x") {
		t.Errorf("log figure %q, want the ratio 1.76x", log.Figure)
	}
}

func TestChecksPass(t *testing.T) {
	rs := results{
		{Name: benchLog1000, Metrics: map[string]float64{"ztlog-p99-ms": 10, "floor-p50-ms": 7}},
		{Name: benchAudit, Metrics: map[string]float64{"ratio-vs-ecdsa-verify-allcores": 0.85}},
	}
	cs := checks(rs)
	if c := byTarget(cs, "log append p99"); c.Verdict != pass {
		t.Errorf("log: %s, want PASS at 1.43x", c.Verdict)
	}
	if c := byTarget(cs, "whole-log audit"); c.Verdict != pass {
		t.Errorf("audit: %s, want PASS at 0.85", c.Verdict)
	}
}

func TestAuditRatiosDisagree(t *testing.T) {
	rs := results{{Name: benchAudit, Metrics: map[string]float64{"ratio-vs-ecdsa-verify-allcores": 0.89, "cpu-ratio-vs-ecdsa-verify": 0.56}}}
	if c := byTarget(checks(rs), "whole-log audit"); c.Verdict != uncertain {
		t.Errorf("audit at 0.89 by rate and 0.56 by CPU: %s, want UNCERTAIN", c.Verdict)
	}
}

func TestBreakdown(t *testing.T) {
	b, err := os.ReadFile("testdata/traces.txt")
	if err != nil {
		t.Fatal(err)
	}
	samples := parseTraces(bytes.NewReader(b))
	if len(samples) != 4 {
		t.Fatalf("%d samples, want 4", len(samples))
	}
	if got := samples[2].Frames[0]; got != "runtime.mallocgc" {
		t.Errorf("third sample's leaf %q: the label line must be skipped", got)
	}
	shares, total := breakdown(samples)
	if total != 100*time.Millisecond {
		t.Errorf("total %s, want 100ms", total)
	}
	want := map[string]time.Duration{catOPA: 40 * time.Millisecond, catTransport: 30 * time.Millisecond, catGC: 20 * time.Millisecond, catRuntime: 10 * time.Millisecond}
	for _, s := range shares {
		if s.CPU != want[s.Category] {
			t.Errorf("%s: %s, want %s", s.Category, s.CPU, want[s.Category])
		}
	}
	if len(shares) != len(want) {
		t.Errorf("%d categories, want %d: %+v", len(shares), len(want), shares)
	}
}

func TestRenderMarksLoadAndMissing(t *testing.T) {
	var buf bytes.Buffer
	m := machine{LoadBefore: "0.50 8.00 7.00", LoadAfter: "0.10 0.20 0.30", CPUs: 2}
	render(&buf, report{Machine: m, Checks: checks(nil), Steps: []stepRun{{step: step{Title: "x"}, Raw: "bin/x.txt", LoadBefore: "0.2 0.2 0.2", LoadAfter: "9.50 1 1"}}})
	out := buf.String()
	if !strings.Contains(out, "Loaded machine: these figures are not final") {
		t.Error("a report with a step that ended at load 9.5 on 2 CPUs does not say it is not final")
	}
	if !strings.Contains(out, "**MISSING**") {
		t.Error("targets without results are not reported as MISSING")
	}
	if !strings.Contains(out, "MISSING: no benchmark results.") {
		t.Error("a step without results is not reported as missing")
	}
}

func TestLoadStep(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/log.txt", raw, 0o644); err != nil {
		t.Fatal(err)
	}
	meta := `{"command":"go test x","started":"2026-12-06T11:00:00Z","duration_ns":60000000000,"load_before":"0.10 0.20 0.30","load_after":"0.40 0.20 0.30"}`
	if err := os.WriteFile(dir+"/log.meta.json", []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	sr := loadStep(step{ID: "log"}, dir)
	if sr.Err != "" {
		t.Fatalf("error %q", sr.Err)
	}
	if sr.LoadAfter != "0.40 0.20 0.30" {
		t.Errorf("load after %q", sr.LoadAfter)
	}
	if sr.Duration != time.Minute {
		t.Errorf("duration %s, want 1m", sr.Duration)
	}
	if len(sr.Results) != 5 {
		t.Errorf("%d results, want 5", len(sr.Results))
	}
	if absent := loadStep(step{ID: "audit"}, dir); !strings.HasPrefix(absent.Err, "not run") {
		t.Errorf("a step with no meta: error %q, want not run", absent.Err)
	}
}

func TestFailedRuns(t *testing.T) {
	f, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := failedRuns(f)
	want := []string{"BenchmarkSomething", "BenchmarkDecisionLatencyAt2000/commit-delay=0s"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("failed runs %q, want %q (one per failure)", got, want)
	}
}
