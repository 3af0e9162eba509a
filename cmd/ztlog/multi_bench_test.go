package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchDecisions is how many decisions one run of BenchmarkFrontends asks
// for, from benchClients concurrent agents spread over the frontends.
const (
	benchDecisions = 1000
	benchClients   = 16
)

// BenchmarkFrontends measures decisions/s (allows, each committed before
// its answer) through `ztlog serve` processes: one on the POSIX driver
// (the baseline, in the same run), then 1, 2 and 3 on one log on the AWS
// driver (MariaDB + s3rver). Each sub-benchmark reports decisions/s and
// its ratio to the POSIX baseline. Run: make bench, or
//
//	go test -run '^$' -bench BenchmarkFrontends -benchtime 1x ./cmd/ztlog/
func BenchmarkFrontends(b *testing.B) {
	var posix float64
	for _, n := range []int{0, 1, 2, 3} {
		name := fmt.Sprintf("aws-%d", n)
		if n == 0 {
			name = "posix-1"
		}
		b.Run(name, func(b *testing.B) {
			c := startCluster(b, n)
			start := time.Now()
			c.setAgent(b, c.frontends[0], "register")
			for _, f := range c.frontends {
				c.waitDecision(b, f, "allow", start, 30*time.Second)
			}
			var rate float64
			for b.Loop() {
				rate = c.decideLoad(b, benchDecisions, benchClients)
			}
			b.ReportMetric(rate, "decisions/s")
			if n == 0 {
				posix = rate
			} else if posix > 0 {
				b.ReportMetric(rate/posix, "x-posix")
			}
		})
	}
}

// decideLoad asks for total decisions from clients concurrent agents,
// round robin over the frontends, and returns decisions/s. Any answer that
// is not an allow fails the benchmark.
func (c *cluster) decideLoad(b *testing.B, total, clients int) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				f := c.frontends[int(i)%len(c.frontends)]
				ar, err := c.decide(b.Context(), f, fmt.Sprintf("bench-%d-%d", w, i))
				if err == nil && ar.Decision != "allow" {
					err = fmt.Errorf("decision %d on %s: %s %v", i, f.addr, ar.Decision, ar.Reasons)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(total) / elapsed.Seconds()
}
