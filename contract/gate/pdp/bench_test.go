package pdp

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkEvaluate measures the per-decision evaluation time of each
// engine on the example policies, cycling through the shared table's
// inputs (20,000 evaluations per engine per iteration; run with
// -benchtime=1x). Metric: µs/eval per engine, and cedar/opa.
func BenchmarkEvaluate(b *testing.B) {
	_, inputs, _ := loadTable(b)
	const n = 20000
	per := map[string]float64{}
	for _, engine := range []string{"opa", "cedar"} {
		p, err := Load(context.Background(), engine, filepath.Join(examples, engine), "")
		if err != nil {
			b.Fatal(err)
		}
		pdp := NewPDP(p, time.Second)
		ctx := context.Background()
		for i := 0; i < 1000; i++ { // warm up
			pdp.Decide(ctx, inputs[i%len(inputs)])
		}
		var total time.Duration
		for range b.N {
			start := time.Now()
			for i := 0; i < n; i++ {
				if _, _, err := pdp.Decide(ctx, inputs[i%len(inputs)]); err != nil {
					b.Fatal(err)
				}
			}
			total += time.Since(start)
		}
		per[engine] = float64(total.Microseconds()) / float64(n*b.N)
		b.ReportMetric(per[engine], engine+"-µs/eval")
	}
	b.ReportMetric(per["cedar"]/per["opa"], "cedar/opa")
	b.ReportMetric(0, "ns/op")
}
