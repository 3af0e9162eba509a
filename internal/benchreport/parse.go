package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// result is one line of `go test -bench` output: a benchmark's full name
// (without the -GOMAXPROCS suffix) and its metrics by unit.
type result struct {
	Name    string
	Metrics map[string]float64
}

// results are the benchmark lines of one or more runs, in order; a
// benchmark run with -count N appears N times.
type results []result

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output and returns its result lines,
// and the "cpu:" line (the processor model) when there is one.
func parseBench(r io.Reader) (rs results, cpu string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(c)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		// name, iterations, then value-unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		res := result{Name: procSuffix.ReplaceAllString(f[0], ""), Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res.Metrics[f[i+1]] = v
		}
		rs = append(rs, res)
	}
	return rs, cpu
}

// all returns every result named name, in run order.
func (rs results) all(name string) []result {
	var out []result
	for _, r := range rs {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

// metric returns the metric of the first result named name.
func (rs results) metric(name, unit string) (float64, bool) {
	for _, r := range rs {
		if r.Name == name {
			v, ok := r.Metrics[unit]
			return v, ok
		}
	}
	return 0, false
}

// names returns the distinct result names with the given prefix, in order.
func (rs results) names(prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rs {
		if strings.HasPrefix(r.Name, prefix) && !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	return out
}

// failedRuns returns the names of the benchmark runs that failed, in
// order, one per failed run: the "--- FAIL: name" lines that begin a line
// (go test also writes one after the benchmark's name column, for the
// same failure).
func failedRuns(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimLeft(sc.Text(), " \t"), "--- FAIL: ")
		if f := strings.Fields(rest); ok && len(f) > 0 {
			out = append(out, procSuffix.ReplaceAllString(f[0], ""))
		}
	}
	return out
}
