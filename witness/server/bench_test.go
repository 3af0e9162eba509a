package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/state"
)

// BenchmarkAddCheckpoint measures cosignatures per second (add-checkpoint
// calls that verify the log signature and the consistency proof, sign,
// and durably replace the state file) against the floor of the same run:
// the atomic state write alone (write, fsync, rename, fsync dir), which
// bounds a durable witness. logs>1 shows distinct origins proceeding in
// parallel (one lock per origin).
func BenchmarkAddCheckpoint(b *testing.B) {
	const perLog = 300
	for _, alg := range []string{cosigner.Ed25519, cosigner.MLDSA44} {
		for _, logs := range []int{1, 8} {
			b.Run(fmt.Sprintf("alg=%s/logs=%d", alg, logs), func(b *testing.B) {
				var tls []*testLog
				for i := 0; i < logs; i++ {
					l := newTestLog(b, fmt.Sprintf("bench.example/log%d", i))
					l.grow(perLog+1, "e")
					tls = append(tls, l)
				}
				f := newBenchFixture(b, tls, alg)
				// Requests are made up front; the clock runs over the calls.
				bodies := make([][]string, logs)
				for i, l := range tls {
					bodies[i] = append(bodies[i], "old 0\n\n"+l.checkpoint(b, 1))
					for s := uint64(2); s <= perLog; s++ {
						bodies[i] = append(bodies[i], l.request(b, s-1, s))
					}
				}
				start := time.Now()
				var wg sync.WaitGroup
				for i := range tls {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for _, body := range bodies[i] {
							if _, err := f.w.AddCheckpoint(context.Background(), []byte(body), "bench"); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				rate := float64(logs*perLog) / time.Since(start).Seconds()

				// The floor: the same number of atomic writes of the same size.
				dir := b.TempDir()
				payload := make([]byte, 300)
				start = time.Now()
				for i := 0; i < logs; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := 0; j < perLog; j++ {
							if err := state.WriteFileAtomic(dir, fmt.Sprintf("f%d", i), payload); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				floor := float64(logs*perLog) / time.Since(start).Seconds()
				b.ReportMetric(rate, "cosignatures/s")
				b.ReportMetric(floor, "atomic-writes/s")
				b.ReportMetric(rate/floor, "ratio-vs-writes")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// newBenchFixture is newFixture without an HTTP server, for benchmarks and
// fuzzing.
func newBenchFixture(b testing.TB, logs []*testLog, alg string) *fixture {
	skey, _, err := cosigner.Generate("witness.example/bench", alg)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := cosigner.Parse(skey)
	f := &fixture{cosigners: []*cosigner.Cosigner{c}}
	f.setLogsTB(b, logs)
	st, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	f.w, err = New(Options{Cosigners: f.cosigners, Store: st, Config: f.cfg.Load, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	return f
}
