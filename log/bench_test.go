package log

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"github.com/zt-infra/ztlog/log/logtest"
)

// benchEntrySize is about the size of a decision entry with a receipt.
const benchEntrySize = 700

type appendFunc func(ctx context.Context, e []byte) error

// bareTessera opens Tessera's POSIX appender with the same batching and
// checkpoint options as the log, and nothing of ours in front of it.
func bareTessera(b *testing.B, dir string) (appendFunc, func()) {
	return openTessera(b, dir, tessera.NewAppendOptions().
		WithBatching(DefaultBatchMaxSize, DefaultBatchMaxAge).
		WithCheckpointInterval(DefaultCheckpointInterval).
		WithPushback(DefaultMaxPending+DefaultBatchMaxSize))
}

// tesseraDefaults opens Tessera's POSIX appender with Tessera's own
// defaults (batches of 256 or 250ms, a checkpoint every 10s).
func tesseraDefaults(b *testing.B, dir string) (appendFunc, func()) {
	return openTessera(b, dir, tessera.NewAppendOptions())
}

func openTessera(b *testing.B, dir string, opts *tessera.AppendOptions) (appendFunc, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	d, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		b.Fatal(err)
	}
	opts = opts.WithCheckpointSigner(testKey(b, testOrigin).Signer)
	a, shutdown, _, err := tessera.NewAppender(ctx, d, opts)
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context, e []byte) error {
			_, err := a.Add(ctx, tessera.NewEntry(e))()
			return err
		}, func() {
			shutdown(ctx)
			cancel()
		}
}

func ourLog(b *testing.B, dir string) (appendFunc, func()) {
	l := openTestLog(b, dir, testKey(b, testOrigin), func(o *Options) { o.CheckpointInterval = DefaultCheckpointInterval })
	return func(ctx context.Context, e []byte) error {
		_, err := l.Append(ctx, e)
		return err
	}, func() { closeLog(b, l) }
}

type runStats struct {
	rate      float64 // appends per second
	latencies []time.Duration
}

func (s runStats) pct(p float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	return s.latencies[min(len(s.latencies)-1, int(float64(len(s.latencies))*p))]
}

func entries(n int) [][]byte {
	es := make([][]byte, n)
	for i := range es {
		es[i] = make([]byte, benchEntrySize)
		rand.Read(es[i])
	}
	return es
}

// closedLoop runs n appends from conc callers, each waiting for its append.
func closedLoop(b *testing.B, add appendFunc, n, conc int) runStats {
	es := entries(n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := add(context.Background(), es[i]); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return runStats{rate: float64(n) / el.Seconds(), latencies: lat}
}

// openLoop issues appends at a fixed rate, whatever the latency.
func openLoop(b *testing.B, add appendFunc, rate int, d time.Duration) runStats {
	n := int(float64(rate) * d.Seconds())
	es := entries(n)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			if err := add(context.Background(), es[i]); err != nil {
				b.Error(err)
				return
			}
			lat[i] = time.Since(t)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return runStats{rate: float64(n) / el.Seconds(), latencies: lat}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var systems = map[string]func(*testing.B, string) (appendFunc, func()){
	"ztlog":    ourLog,
	"tessera":  bareTessera,
	"tessdflt": tesseraDefaults,
}

// compare runs each system twice, alternating, on fresh directories, and
// returns the merged stats by system.
func compare(b *testing.B, names []string, run func(appendFunc) runStats) map[string]runStats {
	runs := map[string][]runStats{}
	for range b.N {
		for range 2 {
			for _, name := range names {
				dir, err := os.MkdirTemp("", "ztlog-bench")
				if err != nil {
					b.Fatal(err)
				}
				add, done := systems[name](b, dir)
				runs[name] = append(runs[name], run(add))
				done()
				os.RemoveAll(dir)
			}
		}
	}
	out := map[string]runStats{}
	for name, r := range runs {
		out[name] = merge(r)
	}
	return out
}

// BenchmarkAppendThroughput compares the log's Append with bare Tessera's
// POSIX appender at the same entry size and concurrency, in alternating
// rounds in one process: "tessera" has the same batching and checkpoint
// options as the log, "tessdflt" Tessera's own defaults. Metrics: appends/s
// of each, the ratios ztlog/tessera and ztlog/tessdflt, and latency p50/p99
// in ms. Run with -benchtime=1x (each iteration is a full comparison).
func BenchmarkAppendThroughput(b *testing.B) {
	for _, conc := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("callers=%d", conc), func(b *testing.B) {
			n := 4000 + conc*40
			st := compare(b, []string{"tessera", "tessdflt", "ztlog"}, func(add appendFunc) runStats {
				return closedLoop(b, add, n, conc)
			})
			o := st["ztlog"]
			b.ReportMetric(o.rate, "ztlog-appends/s")
			b.ReportMetric(st["tessera"].rate, "tessera-appends/s")
			b.ReportMetric(st["tessdflt"].rate, "tessdflt-appends/s")
			b.ReportMetric(o.rate/st["tessera"].rate, "ratio-vs-tessera")
			b.ReportMetric(o.rate/st["tessdflt"].rate, "ratio-vs-tessdflt")
			for _, name := range []string{"ztlog", "tessera", "tessdflt"} {
				b.ReportMetric(ms(st[name].pct(.50)), name+"-p50-ms")
				b.ReportMetric(ms(st[name].pct(.99)), name+"-p99-ms")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkAppendLatencyAt1000 drives 1,000 appends/s open-loop for three
// seconds into the log and into bare Tessera (same options), and reports
// sequencing latency p50/p99/p999 in ms. The baseline "floor" is bare
// Tessera's latency for a lone append (one caller, closed loop): one batch
// write on this machine's disk, the least any entry can wait.
func BenchmarkAppendLatencyAt1000(b *testing.B) {
	st := compare(b, []string{"tessera", "ztlog"}, func(add appendFunc) runStats {
		return openLoop(b, add, 1000, 3*time.Second)
	})
	floor := compare(b, []string{"tessera"}, func(add appendFunc) runStats {
		return closedLoop(b, add, 300, 1)
	})["tessera"]
	o := st["ztlog"]
	b.ReportMetric(o.rate, "ztlog-appends/s")
	b.ReportMetric(ms(o.pct(.50)), "ztlog-p50-ms")
	b.ReportMetric(ms(o.pct(.99)), "ztlog-p99-ms")
	b.ReportMetric(ms(o.pct(.999)), "ztlog-p999-ms")
	b.ReportMetric(ms(st["tessera"].pct(.50)), "tessera-p50-ms")
	b.ReportMetric(ms(st["tessera"].pct(.99)), "tessera-p99-ms")
	b.ReportMetric(ms(floor.pct(.50)), "floor-p50-ms")
	// The disk's own tail: one append at a time, nothing queued.
	b.ReportMetric(ms(floor.pct(.99)), "floor-p99-ms")
	b.ReportMetric(ms(o.pct(.99))/ms(floor.pct(.50)), "ztlog-p99/floor")
	b.ReportMetric(0, "ns/op")
}

func merge(runs []runStats) runStats {
	var out runStats
	for _, r := range runs {
		out.rate += r.rate / float64(len(runs))
		out.latencies = append(out.latencies, r.latencies...)
	}
	slices.Sort(out.latencies)
	return out
}

// BenchmarkPublicationLatency measures, at low load, the time from Append to
// the first published checkpoint covering the entry (Await), against the
// configured checkpoint interval (the baseline: publication cannot be
// promised sooner than one interval).
func BenchmarkPublicationLatency(b *testing.B) {
	l := openTestLog(b, logtest.Dir(b), testKey(b, testOrigin), func(o *Options) { o.CheckpointInterval = DefaultCheckpointInterval })
	defer closeLog(b, l)
	ctx := context.Background()
	var lat []time.Duration
	for range b.N {
		for i := range 20 {
			t := time.Now()
			idx, err := l.Append(ctx, entryN(i))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.Await(ctx, idx); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
			time.Sleep(time.Duration(i%7) * 37 * time.Millisecond) // arrive at varied phases
		}
	}
	st := merge([]runStats{{latencies: lat}})
	b.ReportMetric(ms(st.pct(.50)), "publish-p50-ms")
	b.ReportMetric(ms(st.pct(.99)), "publish-p99-ms")
	b.ReportMetric(ms(DefaultCheckpointInterval), "interval-ms")
	b.ReportMetric(0, "ns/op")
}
