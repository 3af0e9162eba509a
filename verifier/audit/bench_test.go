package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/verifier/audit/audittest"
)

// The benchmark logs: a million entries for the Merkle replay, a fifth of
// that for the modes that parse every entry (to keep the run short; the
// rate is what is reported).
const (
	benchEntries      = 1_000_000
	benchEntriesParse = 200_000
)

var (
	benchOnce sync.Once
	benchDirs = map[uint64]string{}
	benchKey  testKey
	benchErr  error
)

// benchLog writes the benchmark logs once per process (a few seconds).
func benchLog(b *testing.B, n uint64) (string, testKey) {
	benchOnce.Do(func() {
		benchKey = newKey(b)
		for _, size := range []uint64{benchEntries, benchEntriesParse} {
			dir, err := os.MkdirTemp("", "ztlog-audit-bench")
			if err == nil {
				_, err = audittest.WriteLog(dir, benchKey.signer, audittest.DefaultScenario().Entries(size))
			}
			if err != nil {
				benchErr = err
				return
			}
			benchDirs[size] = dir
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDirs[n], benchKey
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// baselineRates measures, in this run, the machine's SHA-256 leaf-hash
// rate over the benchmark log's own entries (one core) and its raw Ed25519
// verify rate on one core and on all cores.
func baselineRates(b *testing.B) (leafHashes, verify1, verifyAll float64) {
	entries := audittest.Slice(audittest.DefaultScenario().Entries(100_000))
	start := time.Now()
	for _, e := range entries {
		rfc6962.DefaultHasher.HashLeaf(e)
	}
	leafHashes = float64(len(entries)) / time.Since(start).Seconds()

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := entries[100]
	sig := ed25519.Sign(priv, msg)
	const n = 20_000
	start = time.Now()
	for range n {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
	verify1 = n / time.Since(start).Seconds()
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start = time.Now()
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / procs {
				ed25519.Verify(pub, msg, sig)
			}
		}()
	}
	wg.Wait()
	verifyAll = float64(n/procs*procs) / time.Since(start).Seconds()
	return
}

// benchSigned is the size of the signed benchmark log (every decision
// and result carries a real DSSE statement).
const benchSigned = 100_000

// BenchmarkAudit audits a log from its POSIX directory: "merkle" replays
// the tree of a 1,000,000-entry log and compares every tile (no entry
// parsing); "entries" (a 200,000-entry log) adds contract.Parse of every
// entry and the completeness checks; "signed-entries" does the same on a
// log whose decisions and results carry real statements (runtime-context
// attestations and broker-result statements, DSSE-signed with ECDSA P-256
// X.509-SVIDs, as the decision path and POST /v1/results commit them);
// "signatures" audits that log with the real entry signature check
// (verifier/attestation: chain to the SPIFFE roots, cached per SVID, and
// one ECDSA verification per statement). Beside them, measured in the same
// run: the SHA-256 leaf-hash rate over the same entries, the raw Ed25519
// verify rate on one core and on all cores, and the raw ECDSA P-256
// verify rate on all cores (for "signatures", measured right before and
// right after the audit, and averaged). cpu-us/entry is the process's CPU
// time (both cores) per audited entry; for "signatures",
// cpu-ratio-vs-ecdsa-verify is the CPU one raw ECDSA verification costs
// (ecdsa-cpu-us/verify) over the CPU one signed entry's audit costs, the
// ratio a loaded machine distorts least. Run with -benchtime=1x.
func BenchmarkAudit(b *testing.B) {
	leafRate, v1, vAll := baselineRates(b)
	ecAll, ecCPU := ecdsaRate(b)
	for _, mode := range []struct {
		name   string
		size   uint64
		signed bool
		verify bool
		opts   Options
	}{
		{"merkle", benchEntries, false, false, Options{MerkleOnly: true}},
		{"entries", benchEntriesParse, false, false, Options{}},
		{"signed-entries", benchSigned, true, false, Options{}},
		{"signatures", benchSigned, true, true, Options{}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			dir, k := benchLog(b, mode.size)
			var signedPerEntry float64
			opts := mode.opts
			if mode.signed {
				sl, pki := benchSignedLog(b, mode.size)
				dir, signedPerEntry = sl.dir, float64(sl.signed)/float64(sl.entries)
				if mode.verify {
					opts.Verifiers = []EntryVerifier{signatureCheck(b, pki)}
				}
			}
			var rate, cpuPerEntry float64
			ecAll, ecCPU := ecAll, ecCPU
			var beforeRate float64
			var beforeCPU time.Duration
			if mode.verify {
				// The ECDSA baseline is measured right before and right
				// after the audit, so that it sees the machine the audit
				// saw: the mean of the two rates, the lesser CPU.
				beforeRate, beforeCPU = ecdsaRate(b)
			}
			for range b.N {
				cpu0 := processCPU()
				r, err := Run(context.Background(), client.FileFetcher{Root: dir}, k.policy, opts)
				if err != nil {
					b.Fatal(err)
				}
				if !r.Valid || r.Entries != mode.size {
					b.Fatalf("audit: valid %v, %d entries: %+v", r.Valid, r.Entries, r.First)
				}
				if mode.verify {
					if c := r.Check("signature.attestation"); c == nil || float64(c.Checked) != signedPerEntry*float64(mode.size) {
						b.Fatalf("signature check: %+v, want %.0f entries checked", c, signedPerEntry*float64(mode.size))
					}
				}
				rate = r.EntriesPerSec
				cpuPerEntry = float64((processCPU() - cpu0).Nanoseconds()) / 1e3 / float64(r.Entries)
			}
			if mode.verify {
				after, afterCPU := ecdsaRate(b)
				ecAll, ecCPU = (beforeRate+after)/2, min(beforeCPU, afterCPU)
			}
			b.ReportMetric(cpuPerEntry, "cpu-us/entry")
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(leafRate, "leafhash/s")
			b.ReportMetric(v1, "ed25519-verify/s-1core")
			b.ReportMetric(vAll, "ed25519-verify/s-allcores")
			b.ReportMetric(ecAll, "ecdsa-p256-verify/s-allcores")
			if mode.signed {
				b.ReportMetric(rate*signedPerEntry, "signed-entries/s")
			}
			if mode.verify {
				b.ReportMetric(rate*signedPerEntry/ecAll, "ratio-vs-ecdsa-verify-allcores")
				// The same ratio in CPU time: what one raw verification
				// costs over what one signed entry's audit costs. A loaded
				// machine changes both rates between two measurements; it
				// changes CPU time per operation much less.
				b.ReportMetric(float64(ecCPU.Nanoseconds())/1e3, "ecdsa-cpu-us/verify")
				b.ReportMetric(float64(ecCPU.Nanoseconds())/1e3/(cpuPerEntry/signedPerEntry), "cpu-ratio-vs-ecdsa-verify")
			}
			if mode.name == "merkle" {
				b.ReportMetric(rate/leafRate, "ratio-vs-leafhash")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}
