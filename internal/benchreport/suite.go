package main

import (
	"fmt"
	"strings"
	"time"
)

// step is one `go test -bench` invocation of the report.
type step struct {
	ID      string // names its raw output file
	Title   string
	Pkg     string
	Bench   string // the -bench pattern
	Count   int    // -count: runs reported one by one
	Timeout time.Duration
	Profile bool // write a CPU profile (the decision CPU breakdown)
}

// The benchmarks of issue 20's targets, and the MCP gateway's added
// latency (issue 15). Names are the benchmarks' own; a benchmark renamed
// or removed is reported as missing.
const (
	benchDecisions = "BenchmarkDecisions"
	benchLat2000   = "BenchmarkDecisionLatencyAt2000"
	benchLog1000   = "BenchmarkAppendLatencyAt1000"
	benchAudit     = "BenchmarkAudit/signatures"
	benchMCP       = "BenchmarkToolsCallAddedLatency"
)

// steps returns the report's runs; quick keeps only what each target
// needs, once.
func steps(quick bool, latencyRuns int) []step {
	decisions := "^" + benchDecisions + "$"
	if quick {
		// 256 clients only. (A pattern cannot leave out the commit-delay
		// variant nested under it: a name shorter than the pattern is a
		// partial match, which runs but does not report.)
		decisions = "^" + benchDecisions + "$/^clients=256$"
	}
	return []step{
		{ID: "decisions", Title: "Decisions at 64/256/1,024 clients beside bare Tessera", Pkg: "./contract/gate/", Bench: decisions, Count: 1, Timeout: 10 * time.Minute},
		{ID: "latency2000", Title: "Decision latency at 2,000/s (each run reported)", Pkg: "./contract/gate/", Bench: "^" + benchLat2000 + "$", Count: latencyRuns, Timeout: 10 * time.Minute, Profile: true},
		{ID: "log", Title: "Log append latency at 1,000/s beside a lone append", Pkg: "./log/", Bench: "^" + benchLog1000 + "$", Count: 1, Timeout: 5 * time.Minute},
		{ID: "audit", Title: "Whole-log audit with signatures beside raw ECDSA P-256 verification", Pkg: "./verifier/audit/", Bench: "^BenchmarkAudit$/^signatures$", Count: 1, Timeout: 10 * time.Minute},
		{ID: "mcp", Title: "MCP gateway added latency", Pkg: "./contract/gateway/mcp/", Bench: "^" + benchMCP + "$", Count: 1, Timeout: 5 * time.Minute},
	}
}

// verdict of one target.
type verdict string

const (
	pass    verdict = "PASS"
	fail    verdict = "FAIL"
	missing verdict = "MISSING"
	// uncertain: two measures of one target disagree (the machine's load
	// changed between them).
	uncertain verdict = "UNCERTAIN"
)

// check is one target's row in the report.
type check struct {
	Target   string
	Figure   string // the measured figure, with its unit
	Baseline string // what it is compared with, measured in the same run
	Verdict  verdict
	Note     string
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func f0(v float64) string { return fmt.Sprintf("%.0f", v) }

func judge(ok bool) verdict {
	if ok {
		return pass
	}
	return fail
}

// missingCheck reports a target whose benchmark or metric is absent.
func missingCheck(target, bench, metric string) check {
	return check{Target: target, Verdict: missing, Note: fmt.Sprintf("no %q metric from %s (benchmark absent, renamed, or its step failed: see the raw output)", metric, bench)}
}

// checks evaluates every target against rs.
func checks(rs results) []check {
	var out []check
	dec := benchDecisions + "/clients=256"
	if v, ok := rs.metric(dec, "decisions/s"); ok {
		t, _ := rs.metric(dec, "tessera-appends/s")
		out = append(out, check{Target: "≥ 10,000 decisions/s at 256 clients, default settings", Figure: f0(v) + " decisions/s", Baseline: f0(t) + " bare Tessera appends/s", Verdict: judge(v >= 10_000)})
	} else {
		out = append(out, missingCheck("≥ 10,000 decisions/s at 256 clients", dec, "decisions/s"))
	}
	if v, ok := rs.metric(dec, "ratio-vs-tessera"); ok {
		out = append(out, check{Target: "≥ 0.75x bare Tessera at 256 clients", Figure: f2(v) + "x", Baseline: "bare Tessera, same concurrency, same run", Verdict: judge(v >= 0.75)})
	} else {
		out = append(out, missingCheck("≥ 0.75x bare Tessera at 256 clients", dec, "ratio-vs-tessera"))
	}
	if v, ok := rs.metric(dec, "cpu-us/decision"); ok {
		e, _ := rs.metric(dec, "cpu-us/mtls-echo")
		out = append(out, check{Target: "≤ 160 µs CPU per decision (clients included)", Figure: f0(v) + " µs", Baseline: f0(e) + " µs per mTLS echo (transport floor)", Verdict: judge(v <= 160)})
	} else {
		out = append(out, missingCheck("≤ 160 µs CPU per decision", dec, "cpu-us/decision"))
	}
	out = append(out, latencyCheck(rs))
	if p99, ok := rs.metric(benchLog1000, "ztlog-p99-ms"); ok {
		floor, fok := rs.metric(benchLog1000, "floor-p50-ms")
		c := check{Target: "log append p99 at 1,000/s ≤ 1.5x the lone-append floor", Figure: f1(p99) + " ms p99", Baseline: f1(floor) + " ms lone append (bare Tessera, p50)"}
		if fok && floor > 0 {
			c.Figure += fmt.Sprintf(" = %.2fx", p99/floor)
			c.Verdict = judge(p99/floor <= 1.5)
		} else {
			c.Verdict, c.Note = missing, "no floor-p50-ms metric"
		}
		out = append(out, c)
	} else {
		out = append(out, missingCheck("log append p99 at 1,000/s ≤ 1.5x floor", benchLog1000, "ztlog-p99-ms"))
	}
	if v, ok := rs.metric(benchAudit, "ratio-vs-ecdsa-verify-allcores"); ok {
		rate, _ := rs.metric(benchAudit, "signed-entries/s")
		ec, _ := rs.metric(benchAudit, "ecdsa-p256-verify/s-allcores")
		c := check{Target: "whole-log audit with signatures ≥ 0.80x ECDSA P-256 verify rate", Figure: fmt.Sprintf("%s signed entries/s = %sx", f0(rate), f2(v)), Baseline: f0(ec) + " raw ECDSA verifies/s, all cores", Verdict: judge(v >= 0.80)}
		if cv, ok := rs.metric(benchAudit, "cpu-ratio-vs-ecdsa-verify"); ok {
			c.Note = fmt.Sprintf("in CPU time (less sensitive to a loaded machine): %.2fx", cv)
			if (cv >= 0.80) != (v >= 0.80) {
				c.Verdict = uncertain
				c.Note += "; the two disagree: the load changed between the audit and the ECDSA measurement, rerun on a quiet machine"
			}
		}
		out = append(out, c)
	} else {
		out = append(out, missingCheck("whole-log audit ≥ 0.80x ECDSA verify rate", benchAudit, "ratio-vs-ecdsa-verify-allcores"))
	}
	for _, c := range []string{"c1", "c32"} {
		added, ok := rs.metric(benchMCP, "added-p50-ms/"+c)
		decide, dok := rs.metric(benchMCP, "decide-p50-ms/"+c)
		callers := strings.TrimPrefix(c, "c") + " callers"
		if callers == "1 callers" {
			callers = "1 caller"
		}
		target := fmt.Sprintf("MCP gateway added p50 ≤ decision p50 + 1 ms (%s, issue 15)", callers)
		if !ok || !dok {
			out = append(out, missingCheck(target, benchMCP, "added-p50-ms/"+c))
			continue
		}
		out = append(out, check{Target: target, Figure: f2(added) + " ms added", Baseline: f2(decide) + " ms decision alone", Verdict: judge(added <= decide+1)})
	}
	return out
}

// latencyCheck: p99 ≤ 15 ms at 2,000 decisions/s in every run, default
// settings (the commit-delay=auto variant: the default since the group
// commit tunes itself).
func latencyCheck(rs results) check {
	target := "p99 ≤ 15 ms at 2,000 decisions/s in every run, default settings"
	name := ""
	for _, n := range rs.names(benchLat2000) {
		if strings.HasSuffix(n, "/commit-delay=auto") {
			name = n
			break
		}
		if name == "" {
			name = n
		}
	}
	runs := rs.all(name)
	if name == "" || len(runs) == 0 {
		return missingCheck(target, benchLat2000, "p99-ms")
	}
	var figs []string
	ok := true
	for _, r := range runs {
		v, has := r.Metrics["p99-ms"]
		if !has {
			return missingCheck(target, name, "p99-ms")
		}
		figs = append(figs, f1(v))
		ok = ok && v <= 15
	}
	n := 0
	for _, r := range runs {
		if r.Metrics["p99-ms"] <= 15 {
			n++
		}
	}
	c := check{Target: target, Figure: strings.Join(figs, ", ") + " ms", Baseline: "—", Verdict: judge(ok), Note: fmt.Sprintf("%s: %d of %d runs within 15 ms", name, n, len(runs))}
	if len(runs) < 5 {
		c.Note += " (the target asks for 5 runs)"
	}
	return c
}
