package daal

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkAnchorGas measures the gas one checkpoint anchor costs on the
// simulated chain (the compiled DAALog, real EVM), beside the baseline of a
// plain value transfer (21,000) measured in the same run.
func BenchmarkAnchorGas(b *testing.B) {
	e := newEnv(b)
	a := e.anchorer(nil)
	var anchorGas, n uint64
	for i := 0; i < max(b.N, 2); i++ {
		e.grow(3)
		e.clock.Advance(2 * time.Minute)
		an := e.anchorOnce(a)
		r, err := e.sim.Client().TransactionReceipt(e.ctx, common.HexToHash(an.TxHash))
		if err != nil {
			b.Fatal(err)
		}
		anchorGas += r.GasUsed
		n++
	}
	to := crypto.PubkeyToAddress(e.other.PublicKey)
	r := e.sendRaw(e.key, &to, nil, 21_000)
	b.ReportMetric(float64(anchorGas)/float64(n), "gas/anchor")
	b.ReportMetric(float64(r.GasUsed), "gas/transfer")
	b.ReportMetric(float64(anchorGas)/float64(n)/float64(r.GasUsed), "anchor/transfer")
}
