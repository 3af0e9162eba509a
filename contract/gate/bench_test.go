package gate_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	service "github.com/zt-infra/ztlog/contract/server"
	ztlog "github.com/zt-infra/ztlog/log"
)

// benchDirEnv names a directory for the benchmarks' logs (default: the
// system temp dir). Pointing it at a tmpfs (/dev/shm) takes the disk out of
// the measurement, to see the CPU ceiling of the decision path; the figures
// are then not durable-storage figures and must be reported as such.
const benchDirEnv = "ZTLOG_BENCH_DIR"

// benchDecisionTimeout replaces the 2s production bound in the benchmarks,
// so that a loaded machine measures throughput rather than 503s (which are
// still counted, as failed-closed-503s).
const benchDecisionTimeout = 10 * time.Second

// decisionEntrySize is about the size of an allow entry with a receipt.
const decisionEntrySize = 800

type stats struct {
	rate float64
	lat  []time.Duration
	// cpu is the process's CPU time (user+system) per operation: server
	// and benchmark clients together, since both run in this process.
	cpu time.Duration
	// unavailable counts operations that failed closed (HTTP 503), which
	// an overloaded decision path answers by design.
	unavailable int
	// batch is the mean number of entries per batch the log handed to
	// storage during the run (0: not measured).
	batch float64
}

// batches returns how many batches s's log has handed to storage and how
// many entries they held (its ztlog_log_batch_entries histogram).
func batches(b *testing.B, s *server) (count uint64, entries float64) {
	mfs, err := s.svc.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ztlog_log_batch_entries" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	b.Fatal("no ztlog_log_batch_entries metric")
	return 0, 0
}

// measured runs run (one measured run against s) and sets the mean batch
// size of s's log over it.
func measured(b *testing.B, s *server, run func() stats) stats {
	c0, e0 := batches(b, s)
	st := run()
	if c1, e1 := batches(b, s); c1 > c0 {
		st.batch = (e1 - e0) / float64(c1-c0)
	}
	return st
}

// errUnavailable is a 503: no decision, by design under overload.
var errUnavailable = fmt.Errorf("503")

func (s stats) pct(p float64) float64 {
	if len(s.lat) == 0 {
		return 0
	}
	return float64(s.lat[min(len(s.lat)-1, int(float64(len(s.lat))*p))].Microseconds()) / 1000
}

// closed runs n operations from conc callers, each waiting for its own.
func closed(b *testing.B, n, conc int, op func(i int) error) stats {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed, unavailable atomic.Int64
	cpu0 := processCPU()
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
				err := op(i)
				lat[i] = time.Since(t)
				if err == errUnavailable {
					unavailable.Add(1)
					continue
				}
				if err != nil {
					if failed.Add(1) == 1 {
						b.Error(err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := processCPU() - cpu0
	slices.Sort(lat)
	u := int(unavailable.Load())
	return stats{rate: float64(n-u) / el.Seconds(), lat: lat, unavailable: u, cpu: cpu / time.Duration(n)}
}

// benchGC runs the benchmark under the garbage collector setting ztlog
// serve ships with (service.TuneGC), restoring the previous one after.
func benchGC(b *testing.B) {
	prev := debug.SetGCPercent(100)
	debug.SetGCPercent(prev)
	service.TuneGC(nil)
	b.Cleanup(func() { debug.SetGCPercent(prev) })
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// open issues operations at a fixed rate for d, whatever the latency.
func open(b *testing.B, rate int, d time.Duration, op func(i int) error) stats {
	n := int(float64(rate) * d.Seconds())
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	var mu sync.Mutex
	unavailable := 0
	start := time.Now()
	for i := range n {
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			err := op(i)
			lat[i] = time.Since(t)
			if err == errUnavailable {
				mu.Lock()
				unavailable++
				mu.Unlock()
				return
			}
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return stats{rate: float64(n-unavailable) / el.Seconds(), lat: lat, unavailable: unavailable}
}

// bareTessera measures Tessera's POSIX appender alone, with the log's
// batching and checkpoint options, at the given concurrency.
func bareTessera(b *testing.B, n, conc int) stats {
	dir, err := os.MkdirTemp(os.Getenv(benchDirEnv), "ztlog-bench-tessera")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		b.Fatal(err)
	}
	skey, _, _ := ztlog.GenerateKey("bench.example/tessera")
	key, _ := ztlog.ParseKey(skey)
	a, shutdown, _, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().
		WithCheckpointSigner(key.Signer).
		WithBatching(ztlog.DefaultBatchMaxSize, ztlog.DefaultBatchMaxAge).
		WithCheckpointInterval(ztlog.DefaultCheckpointInterval).
		WithPushback(ztlog.DefaultMaxPending+ztlog.DefaultBatchMaxSize))
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(ctx)
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = make([]byte, decisionEntrySize)
		rand.Read(entries[i])
	}
	return closed(b, n, conc, func(i int) error {
		_, err := a.Add(ctx, tessera.NewEntry(entries[i]))()
		return err
	})
}

// decider posts allow-eligible decisions over mTLS with keep-alive.
func decider(s *server, conc int) func(i int) error {
	return poster(s, conc, s.url+"/v1/actions")
}

// poster posts an allow-eligible action request to url from the agent's
// mTLS client, keeping up to conc connections alive. A 503 is
// errUnavailable; any other status but 200 an error.
func poster(s *server, conc int, url string) func(i int) error {
	c := s.mtls(agentID)
	c.http.Transport.(*http.Transport).MaxIdleConnsPerHost = conc
	c.http.Transport.(*http.Transport).MaxConnsPerHost = conc
	return func(i int) error {
		resp, err := c.http.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"action":"demo.echo","resource":"demo://bench/%d"}`, i)))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return errUnavailable
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("request %d to %s: HTTP %d", i, url, resp.StatusCode)
		}
		return nil
	}
}

// echoResponse is about the size of a decision response with a receipt.
var echoResponse = []byte(`{"decision":"allow","pad":"` + strings.Repeat("x", 1100) + `"}`)

// mtlsEcho measures the transport alone: the same clients, TLS
// configuration (SPIFFE mTLS, keep-alive) and concurrency against an
// http.Server on 127.0.0.1 whose handler reads the body and writes a
// decision-sized answer, and nothing else. Its CPU per request is the part
// of a decision's cost that is HTTP and TLS on both ends.
func mtlsEcho(b *testing.B, s *server, n, conc int) stats {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{TLSConfig: identity.ServerTLS(s.src), ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
				http.Error(w, "no client certificate", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(echoResponse)
		})}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	defer srv.Close()
	op := poster(s, conc, "https://"+ln.Addr().String()+"/v1/actions")
	closed(b, 2000, conc, op)
	return closed(b, n, conc, op)
}

// BenchmarkDecisions drives POST /v1/actions over real mutual TLS with
// keep-alive from many concurrent clients (example OPA policy, Tessera
// POSIX log, Ed25519 receipts), and measures bare Tessera append
// throughput at the same concurrency in the same run. Metrics:
// decisions/s, entries/batch (the log's mean batch during the run),
// tessera-appends/s, their ratio, latency p50/p99/p999 (ms),
// CPU time per decision and per bare append (clients included), and the
// decisions/s the machine's cores could carry at that CPU cost; and, as
// the transport's own floor, requests/s and CPU per request of an mTLS
// server that answers without deciding (mtls-echo), same clients. Cases:
// the default (self-tuned) commit delay at 64, 256 and 1,024 clients; at
// 256, the fixed delay benchCommitDelay and none (commit-delay=off).
// Run with -benchtime=1x.
func BenchmarkDecisions(b *testing.B) {
	benchGC(b)
	for _, c := range []struct {
		conc  int
		delay time.Duration
	}{{64, 0}, {256, 0}, {1024, 0}, {256, benchCommitDelay}, {256, ztlog.CommitDelayOff}} {
		conc := c.conc
		name := fmt.Sprintf("clients=%d", conc)
		if c.delay != 0 {
			name += "/commit-delay=" + ztlog.CommitDelayText(c.delay)
		}
		b.Run(name, func(b *testing.B) {
			n := 10000
			var dec, bare, echo []stats
			for range b.N {
				for range 2 { // alternate, to share the machine's noise
					s := newServer(b, options{decisionTimeout: benchDecisionTimeout, checkpointInterval: ztlog.DefaultCheckpointInterval, commitDelay: c.delay})
					s.register(agentID, "")
					op := decider(s, conc)
					closed(b, 2000, conc, op) // warm up connections and JIT-ish caches
					dec = append(dec, measured(b, s, func() stats { return closed(b, n, conc, op) }))
					s.stop()
					bare = append(bare, bareTessera(b, n/2, conc))
					echo = append(echo, mtlsEcho(b, s, n, conc))
				}
			}
			d, t, e := merge(dec), merge(bare), merge(echo)
			b.ReportMetric(d.rate, "decisions/s")
			b.ReportMetric(d.batch, "entries/batch")
			b.ReportMetric(t.rate, "tessera-appends/s")
			b.ReportMetric(d.rate/t.rate, "ratio-vs-tessera")
			b.ReportMetric(d.pct(.50), "p50-ms")
			b.ReportMetric(d.pct(.99), "p99-ms")
			b.ReportMetric(d.pct(.999), "p999-ms")
			b.ReportMetric(float64(d.unavailable), "failed-closed-503s")
			// CPU per operation, and the rate the machine's cores could
			// carry at that cost: the ceiling no tuning of waits can pass.
			b.ReportMetric(float64(d.cpu.Microseconds()), "cpu-us/decision")
			b.ReportMetric(float64(t.cpu.Microseconds()), "cpu-us/tessera-append")
			b.ReportMetric(e.rate, "mtls-echo/s")
			b.ReportMetric(float64(e.cpu.Microseconds()), "cpu-us/mtls-echo")
			if d.cpu > 0 {
				b.ReportMetric(float64(runtime.NumCPU())*float64(time.Second)/float64(d.cpu), "cpu-bound-decisions/s")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkDecisionLatencyAt2000 sends 2,000 decisions/s open-loop for 4
// seconds and reports latency p50/p99/p999 in ms, with the default
// (self-tuned) commit delay, with none, and with the benchmarks' fixed one.
func BenchmarkDecisionLatencyAt2000(b *testing.B) {
	benchGC(b)
	for _, delay := range []time.Duration{0, ztlog.CommitDelayOff, benchCommitDelay} {
		b.Run("commit-delay="+ztlog.CommitDelayText(delay), func(b *testing.B) {
			var runs []stats
			for range b.N {
				s := newServer(b, options{decisionTimeout: benchDecisionTimeout, checkpointInterval: ztlog.DefaultCheckpointInterval, commitDelay: delay})
				s.register(agentID, "")
				op := decider(s, 512)
				closed(b, 2000, 64, op)
				runs = append(runs, measured(b, s, func() stats { return open(b, 2000, 4*time.Second, op) }))
				s.stop()
			}
			st := merge(runs)
			b.ReportMetric(st.rate, "decisions/s")
			b.ReportMetric(st.batch, "entries/batch")
			b.ReportMetric(st.pct(.50), "p50-ms")
			b.ReportMetric(st.pct(.99), "p99-ms")
			b.ReportMetric(st.pct(.999), "p999-ms")
			b.ReportMetric(float64(st.unavailable), "failed-closed-503s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchCommitDelay is the group-commit delay (ztlog serve --commit-delay)
// the benchmarks also measure, beside none: the throughput it buys under
// load and the latency it costs at 2,000 decisions/s.
const benchCommitDelay = 4 * time.Millisecond

func merge(runs []stats) stats {
	var out stats
	for _, r := range runs {
		out.rate += r.rate / float64(len(runs))
		out.cpu += r.cpu / time.Duration(len(runs))
		out.lat = append(out.lat, r.lat...)
		out.unavailable += r.unavailable
		out.batch += r.batch / float64(len(runs))
	}
	slices.Sort(out.lat)
	return out
}

// BenchmarkDecisionsByEngine drives POST /v1/actions end to end (mTLS,
// keep-alive, 256 clients, Tessera POSIX) with each policy engine on the
// example policies, alternating engines. Metrics: decisions/s per engine
// and their ratio. Run with -benchtime=1x.
func BenchmarkDecisionsByEngine(b *testing.B) {
	benchGC(b)
	const conc, n = 256, 8000
	runs := map[string][]stats{}
	for range b.N {
		for range 2 {
			for _, engine := range []string{"opa", "cedar"} {
				s := newServer(b, options{policyEngine: engine, decisionTimeout: benchDecisionTimeout, checkpointInterval: ztlog.DefaultCheckpointInterval})
				s.register(agentID, "")
				op := decider(s, conc)
				closed(b, 1000, conc, op)
				runs[engine] = append(runs[engine], closed(b, n, conc, op))
				s.stop()
			}
		}
	}
	o, c := merge(runs["opa"]), merge(runs["cedar"])
	b.ReportMetric(o.rate, "opa-decisions/s")
	b.ReportMetric(c.rate, "cedar-decisions/s")
	b.ReportMetric(c.rate/o.rate, "cedar/opa")
	b.ReportMetric(o.pct(.99), "opa-p99-ms")
	b.ReportMetric(c.pct(.99), "cedar-p99-ms")
	b.ReportMetric(0, "ns/op")
}
