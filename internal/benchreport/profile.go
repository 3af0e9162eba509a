package main

import (
	"bufio"
	"io"
	"sort"
	"strings"
	"time"
)

// A CPU profile is read from `go tool pprof -traces` (no pprof library in
// the module): blocks separated by "-----------+---..." lines, each a
// sample's value and its stack, leaf first:
//
//	-----------+-------------------------------------------------------
//	      10ms   runtime.futex
//	             runtime.futexsleep
//	             ...

// sample is one stack (leaf first) and the CPU time it was seen with.
type sample struct {
	CPU    time.Duration
	Frames []string
}

// parseTraces reads `go tool pprof -traces` output.
func parseTraces(r io.Reader) []sample {
	var out []sample
	var cur *sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			cur = nil
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if cur == nil {
			if len(f) < 2 {
				continue
			}
			d, err := time.ParseDuration(f[0])
			if err != nil {
				continue // a header line, or a label line
			}
			out = append(out, sample{CPU: d, Frames: []string{f[1]}})
			cur = &out[len(out)-1]
			continue
		}
		if strings.Contains(f[0], ":[") {
			continue // a label line (key:[values])
		}
		cur.Frames = append(cur.Frames, f[0])
	}
	return out
}

// Category names of the CPU breakdown.
const (
	catTessera   = "Tessera append (storage, integration, checkpoint signing)"
	catOPA       = "OPA evaluation"
	catCedar     = "Cedar evaluation"
	catReceipt   = "receipt signing"
	catLogging   = "request logging (slog)"
	catGC        = "allocation and GC"
	catJSON      = "JSON (encode, decode, JCS)"
	catTransport = "transport: TLS, HTTP, sockets (both ends)"
	catOurs      = "ztlog's own code (other)"
	catRuntime   = "runtime: scheduler, timers, idle"
	catOther     = "other"
)

// components are matched anywhere in a stack, first listed first: a sample
// inside OPA is OPA's whatever it calls (its JSON, its allocations).
var components = []struct {
	cat      string
	prefixes []string
}{
	{catTessera, []string{"github.com/transparency-dev/tessera"}},
	{catOPA, []string{"github.com/open-policy-agent/"}},
	{catCedar, []string{"github.com/cedar-policy/"}},
	{catReceipt, []string{"github.com/zt-infra/ztlog/contract/receipt."}},
	{catLogging, []string{"log/slog.", "github.com/zt-infra/ztlog/internal/slogx."}},
}

// innermost categories are decided by the frame nearest the leaf that
// belongs to one of them: a TLS write called from ztlog's client code is
// transport, ztlog code that calls SHA-256 is ztlog's.
var innermost = []struct {
	cat      string
	prefixes []string
}{
	{catGC, []string{"runtime.mallocgc", "runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcDrain", "runtime.markroot", "runtime.newobject", "runtime.growslice", "runtime.makeslice", "runtime.gcStart", "runtime.sweepone"}},
	{catJSON, []string{"encoding/json.", "github.com/go-json-experiment/json", "github.com/zt-infra/ztlog/internal/jcs.", "github.com/zt-infra/ztlog/internal/jsonx."}},
	{catTransport, []string{"crypto/tls.", "net/http.", "net.", "internal/poll.", "syscall.", "vendor/golang.org/x/net/", "golang.org/x/net/http2"}},
	{catOurs, []string{"github.com/zt-infra/ztlog/"}},
}

// categorize names the part of a decision a stack is spent in.
func categorize(frames []string) string {
	for _, c := range components {
		for _, f := range frames {
			if hasAnyPrefix(f, c.prefixes) {
				return c.cat
			}
		}
	}
	for _, f := range frames {
		for _, c := range innermost {
			if hasAnyPrefix(f, c.prefixes) {
				return c.cat
			}
		}
	}
	for _, f := range frames {
		if strings.HasPrefix(f, "runtime.") {
			return catRuntime
		}
	}
	return catOther
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// share is one category's CPU time and fraction of the profile.
type share struct {
	Category string
	CPU      time.Duration
	Fraction float64
}

// breakdown groups the samples by category, largest first.
func breakdown(samples []sample) (out []share, total time.Duration) {
	by := map[string]time.Duration{}
	for _, s := range samples {
		by[categorize(s.Frames)] += s.CPU
		total += s.CPU
	}
	for c, d := range by {
		out = append(out, share{Category: c, CPU: d})
	}
	for i := range out {
		if total > 0 {
			out[i].Fraction = float64(out[i].CPU) / float64(total)
		}
	}
	sortShares(out)
	return out, total
}

// sortShares sorts largest first, then by name.
func sortShares(out []share) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].CPU != out[j].CPU {
			return out[i].CPU > out[j].CPU
		}
		return out[i].Category < out[j].Category
	})
}
