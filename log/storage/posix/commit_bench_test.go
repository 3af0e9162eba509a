package posix

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// commitFile writes name in dir the way Tessera v1.0.4's POSIX driver
// writes every tile, entry bundle and treeState (storage/posix/file_ops.go,
// overwrite): a temporary file opened with O_SYNC, renamed into place, and
// the directory fsynced.
func commitFile(b *testing.B, dir, name string, data []byte, n int) {
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	tmp := filepath.Join(dir, name+".tmp"+strconv.Itoa(n))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_SYNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		b.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBatchFileCommits measures, on the disk of $ZTLOG_BENCH_DIR (or
// the temporary directory), the synchronous file commits Tessera's POSIX
// driver makes for one small batch (docs/perf-notes-log.md): "serial" is
// v1.0.4 (entry bundle, then level-0 tile, then treeState, one after the
// other), "parallel" the proposal (bundle and tile at once, then
// treeState). Alternating rounds in one run; metrics: p50/p90/p99 of one
// batch's commits in ms, and parallel/serial at p50.
func BenchmarkBatchFileCommits(b *testing.B) {
	root, err := os.MkdirTemp(os.Getenv("ZTLOG_BENCH_DIR"), "ztlog-commit-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(root)
	dirs := map[string]string{}
	for _, d := range []string{"entries", "tile0", "state"} {
		dirs[d] = filepath.Join(root, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			b.Fatal(err)
		}
	}
	bundle, tile, state := make([]byte, 8*700), make([]byte, 32*50), make([]byte, 66)
	batch := func(i int, parallel bool) time.Duration {
		start := time.Now()
		name := fmt.Sprint(i % 256)
		if parallel {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); commitFile(b, dirs["entries"], name, bundle, i) }()
			go func() { defer wg.Done(); commitFile(b, dirs["tile0"], name, tile, i) }()
			wg.Wait()
		} else {
			commitFile(b, dirs["entries"], name, bundle, i)
			commitFile(b, dirs["tile0"], name, tile, i)
		}
		commitFile(b, dirs["state"], "treeState", state, i)
		return time.Since(start)
	}
	var serial, parallel []time.Duration
	for range b.N {
		for round := range 3 {
			for i := range 100 {
				serial = append(serial, batch(round*1000+i, false))
			}
			for i := range 100 {
				parallel = append(parallel, batch(round*1000+i, true))
			}
		}
	}
	slices.Sort(serial)
	slices.Sort(parallel)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
	}
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}} {
		b.ReportMetric(pct(serial, q.p), "serial-"+q.name+"-ms")
		b.ReportMetric(pct(parallel, q.p), "parallel-"+q.name+"-ms")
	}
	b.ReportMetric(pct(parallel, .5)/pct(serial, .5), "parallel/serial-p50")
	b.ReportMetric(0, "ns/op")
}
