package history

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
)

// benchLogSize is the log of the history benchmarks: a million entries.
const benchLogSize = 1_000_000

// benchHistory is one benchmark history: the encoded answer for an agent
// with n entries spread evenly over a log of benchLogSize, whose index
// also holds benchLogSize other keys (a correlation id per entry).
type benchHistory struct {
	l         *testLog
	key       string
	raw       []byte
	entries   int
	logHashes int
	mapHashes int
	leafBytes int
	snapshot  time.Duration
	snapCPU   time.Duration
}

// benchMade holds each size's setup across the runs of one benchmark.
var benchMade = map[int]*benchHistory{}

func benchMake(b *testing.B, n int) *benchHistory {
	if h := benchMade[n]; h != nil {
		return h
	}
	h := benchBuild(b, n)
	benchMade[n] = h
	return h
}

func benchBuild(b *testing.B, n int) *benchHistory {
	l := newTestLog(b, testOrigin)
	key := AgentKey(agentA)
	stride := benchLogSize / n
	leaves := map[uint64][]byte{}
	leafBytes := 0
	for i := uint64(0); i < benchLogSize; i++ {
		if int(i)%stride == 0 && len(leaves) < n {
			d := decision(agentA, fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i), int(i%60), entry.Allow)
			d.Resource = fmt.Sprintf("demo://bench/%d", i)
			leaf, err := entry.Marshal(d)
			if err != nil {
				b.Fatal(err)
			}
			leaves[i] = leaf
			leafBytes += len(leaf)
			l.x.ApplyParsed(leafHash(leaf), d)
			continue
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], i)
		l.x.ApplyParsed(sha256.Sum256(buf[:]), nil)
	}
	// A key per entry, as unique correlation ids make.
	for i := uint64(0); i < benchLogSize; i++ {
		k := CorrelationKey(fmt.Sprintf("synthetic-%d", i))
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], i)
		kh := KeyHash(k)
		l.x.keys[kh] = &keyState{key: k, count: 1, value: ChainValue(Hash{}, i, sha256.Sum256(buf[:]))}
		l.x.changed[kh] = struct{}{}
	}
	l.x.dirty = true
	l.x.Snapshot()
	// The cost of a snapshot after a checkpoint's worth of new keys (one
	// second of decisions at 1,000/s, each with a new correlation id).
	for i := uint64(0); i < 1000; i++ {
		k := CorrelationKey(fmt.Sprintf("new-%d", i))
		kh := KeyHash(k)
		l.x.keys[kh] = &keyState{key: k, count: 1, value: ChainValue(Hash{}, i, Hash{})}
		l.x.changed[kh] = struct{}{}
	}
	l.x.dirty = true
	start, cpu0 := time.Now(), processCPU()
	s := l.x.Snapshot()
	took, cpu := time.Since(start), processCPU()-cpu0
	ic, err := l.x.IndexCheckpoint(l.origin, s).Sign(l.signer)
	if err != nil {
		b.Fatal(err)
	}
	a, err := l.x.Answer(key, s, l.checkpoint(b, s.Size), ic, func(idx []uint64) ([][]byte, error) {
		out := make([][]byte, len(idx))
		for k, i := range idx {
			out[k] = leaves[i]
		}
		return out, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchHistory{l: l, key: key, raw: encode(b, a), entries: len(a.Entries), logHashes: len(a.LogProof),
		mapHashes: len(a.Membership.Path), leafBytes: leafBytes / n, snapshot: took, snapCPU: cpu}
}

// BenchmarkHistory verifies the history of an agent with 10, 1,000 and
// 100,000 entries in a log of 1,000,000 entries whose index holds
// 1,000,000 other keys: answer bytes (JSON, entries included), hashes in
// the multi-leaf log proof and in the map path, and the client's
// verification time (checkpoint, index checkpoint, map proof, chain,
// multi-leaf proof, parsing every entry). log-MB-1M is what downloading
// the whole log of such entries costs instead; the audit's entries/s
// (verifier/audit BenchmarkAudit/entries, run in the same command) gives
// its time. Run with -benchtime=1x or more; setup takes about a minute.
func BenchmarkHistory(b *testing.B) {
	for _, n := range []int{10, 1_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			h := benchMake(b, n)
			b.ResetTimer()
			cpu0 := processCPU()
			for range b.N {
				got, err := Verify(h.raw, h.key, h.l.policy, time.Time{})
				if err != nil {
					b.Fatal(err)
				}
				if len(got.Entries) != n {
					b.Fatalf("%d entries verified, want %d", len(got.Entries), n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "verify-cpu-ms")
			b.ReportMetric(float64(len(h.raw)), "answer-bytes")
			b.ReportMetric(float64(h.logHashes), "log-proof-hashes")
			b.ReportMetric(float64(h.logHashes*32), "log-proof-bytes")
			b.ReportMetric(float64(h.mapHashes), "map-path-hashes")
			b.ReportMetric(float64(n*20), "single-proofs-hashes")
			b.ReportMetric(float64(h.leafBytes*benchLogSize)/1e6, "log-MB-1M")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "verify-ms")
			b.ReportMetric(h.snapshot.Seconds()*1000, "snapshot-ms-1Mkeys-1knew")
			b.ReportMetric(h.snapCPU.Seconds()*1000, "snapshot-cpu-ms-1Mkeys-1knew")
		})
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSnapshot is the cost of one index checkpoint's map tree: an
// index of 1,000,000 keys gets 1,000 new keys (a second of decisions at
// 1,000/s, each with a new correlation id) and 1,000 extended ones.
func BenchmarkSnapshot(b *testing.B) {
	x := New(Options{})
	add := func(name string, i uint64) {
		kh := KeyHash(name)
		st := x.keys[kh]
		if st == nil {
			st = &keyState{key: name}
			x.keys[kh] = st
		}
		st.count++
		st.value = ChainValue(st.value, i, Hash{})
		x.changed[kh] = struct{}{}
		x.dirty = true
	}
	for i := uint64(0); i < benchLogSize; i++ {
		add(fmt.Sprintf("corr:%d", i), i)
	}
	x.Snapshot()
	b.ResetTimer()
	var cpu time.Duration
	for n := range b.N {
		b.StopTimer()
		for i := uint64(0); i < 1000; i++ {
			add(fmt.Sprintf("corr:new-%d-%d", n, i), i)
			add(fmt.Sprintf("corr:%d", i*997), i)
		}
		b.StartTimer()
		c0 := processCPU()
		x.Snapshot()
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/snapshot")
}
