package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gateway/mcp"
)

// benchCalls is how many tools/call each measurement makes (per path, per
// concurrency), whatever b.N is: `make bench` runs with -benchtime 1x.
const benchCalls = 400

// BenchmarkToolsCallAddedLatency measures, in one run against one `ztlog
// dev` and one upstream Go SDK server (in-memory transports on both
// sides), the latency of tools/call echo
//
//   - direct: the Go SDK client straight to the upstream;
//   - gateway: the same client through the gateway (decision with a
//     runtime attestation over mutual TLS, committed; receipt verified;
//     forwarded; result signed and kept in the outbox, synced, before the
//     answer; committed right after by the outbox's courier);
//   - decide: the decision alone, as the gateway asks it (client.Decide);
//
// at 1 and 32 concurrent callers, and reports p50 and p99 of each, and the
// added latency (gateway − direct) at p50 and p99, in milliseconds; and,
// from the gateway's own timings (Config.Observe), the p50 of its
// decisions (made while its results are being committed), of its broker
// checks, of the upstream call and of keeping the result. The goal
// (issue 15): added p50 ≤ decide p50 + 1 ms.
func BenchmarkToolsCallAddedLatency(b *testing.B) {
	// ZTLOG_BENCH_DIR (as contract/gate's benchmarks) puts the log and the
	// gateway's outbox there (e.g. /dev/shm, to take the disk out of
	// the figures; they are then not durable-storage figures).
	dir := b.TempDir()
	if env := os.Getenv("ZTLOG_BENCH_DIR"); env != "" {
		var err error
		if dir, err = os.MkdirTemp(env, "mcp-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	d := startDevIn(b, filepath.Join(dir, "ztlog"))
	up := newCountingServer()
	o := gatewayOptions(b, d)
	o.Outbox = filepath.Join(dir, "broker.outbox")
	var tmu sync.Mutex
	var timings []mcp.CallTiming
	o.Observe = func(ct mcp.CallTiming) { tmu.Lock(); timings = append(timings, ct); tmu.Unlock() }
	phase := func(f func(mcp.CallTiming) time.Duration) []time.Duration {
		tmu.Lock()
		defer tmu.Unlock()
		var out []time.Duration
		for _, ct := range timings {
			out = append(out, f(ct))
		}
		slices.Sort(out)
		return out
	}
	g, gw := openGateway(b, o, up.transport(b))
	direct, err := sdk.NewClient(&sdk.Implementation{Name: "direct", Version: "1"}, nil).Connect(context.Background(), up.transport(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	// The decision alone, over a client configured as the gateway's (as
	// many idle connections as callers).
	asvid, _ := o.Agent.GetX509SVID()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64,
		TLSClientConfig: identity.ClientTLS(o.Agent, o.Agent, spiffeid.ID{}, asvid.ID.TrustDomain())}}
	c, err := client.New(client.Config{URL: o.URL, SVID: o.Agent, Bundles: o.Agent, Timeout: 10 * time.Second, HTTPClient: hc})
	if err != nil {
		b.Fatal(err)
	}
	brokerSVID, _ := o.Broker.GetX509SVID()
	args := map[string]any{"message": "benchmark"}
	raw, _ := json.Marshal(args)
	decide := func() error {
		rt := o.Runtime
		rt.Tool = &attest.Tool{ManifestDigest: g.Manifest(), Name: "echo"}
		dd, err := c.Decide(context.Background(), client.Request{Action: "mcp.tool.counting.echo", Resource: "counting",
			Args: json.RawMessage(raw), Broker: brokerSVID.ID.String(), Runtime: &rt})
		if err == nil && !dd.Allow {
			err = fmt.Errorf("denied: %v", dd.Response.Reasons)
		}
		return err
	}
	callOn := func(cs *sdk.ClientSession) func() error {
		return func() error {
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: args})
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error: %s", textOf(res))
			}
			return err
		}
	}
	b.ResetTimer()
	for range b.N {
		for _, conc := range []int{1, 32} {
			dl := measure(b, benchCalls, conc, callOn(direct))
			tmu.Lock()
			timings = nil
			tmu.Unlock()
			gl := measure(b, benchCalls, conc, callOn(gw))
			dec := phase(func(ct mcp.CallTiming) time.Duration { return ct.Decide })
			brk := phase(func(ct mcp.CallTiming) time.Duration { return ct.Broker })
			upl := phase(func(ct mcp.CallTiming) time.Duration { return ct.Upstream })
			res := phase(func(ct mcp.CallTiming) time.Duration { return ct.Result })
			tot := phase(func(ct mcp.CallTiming) time.Duration { return ct.Total })
			// The gateway's own part of each call: all but the decision.
			own := phase(func(ct mcp.CallTiming) time.Duration { return ct.Total - ct.Decide })
			xl := measure(b, benchCalls, conc, decide)
			b.ReportMetric(ms(pct(dl, 0.50)), fmt.Sprintf("direct-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(dl, 0.99)), fmt.Sprintf("direct-p99-ms/c%d", conc))
			b.ReportMetric(ms(pct(gl, 0.50)), fmt.Sprintf("gateway-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(gl, 0.99)), fmt.Sprintf("gateway-p99-ms/c%d", conc))
			b.ReportMetric(ms(pct(gl, 0.50)-pct(dl, 0.50)), fmt.Sprintf("added-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(gl, 0.99)-pct(dl, 0.99)), fmt.Sprintf("added-p99-ms/c%d", conc))
			// The gateway's own decisions (made while its results are
			// committed too) and its broker checks.
			b.ReportMetric(ms(pct(dec, 0.50)), fmt.Sprintf("gateway-decide-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(own, 0.50)), fmt.Sprintf("gateway-own-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(own, 0.99)), fmt.Sprintf("gateway-own-p99-ms/c%d", conc))
			b.ReportMetric(ms(pct(brk, 0.50)), fmt.Sprintf("gateway-broker-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(upl, 0.50)), fmt.Sprintf("gateway-upstream-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(res, 0.50)), fmt.Sprintf("gateway-result-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(tot, 0.50)), fmt.Sprintf("gateway-inside-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(xl, 0.50)), fmt.Sprintf("decide-p50-ms/c%d", conc))
			b.ReportMetric(ms(pct(xl, 0.99)), fmt.Sprintf("decide-p99-ms/c%d", conc))
		}
	}
	b.StopTimer()
	// Let the results of the last calls be committed before ztlog stops.
	time.Sleep(500 * time.Millisecond)
}

// measure makes n calls of op from conc callers and returns the sorted
// latencies. Any failure fails the benchmark: a figure over failed calls
// would measure nothing.
func measure(b *testing.B, n, conc int, op func() error) []time.Duration {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failOnce sync.Once
	var failed error
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(); err != nil {
					failOnce.Do(func() { failed = err })
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		b.Fatalf("a call failed: %v", failed)
	}
	slices.Sort(lat)
	return lat
}

func pct(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
