package daal

import (
	"fmt"
	"io"
)

// Verdicts counts the report's on-chain anchors by verdict ("verified",
// "split_view", "unexpected", "legacy", "foreign").
func (r *Report) Verdicts() map[string]int {
	counts := map[string]int{}
	for _, ca := range r.OnChain {
		counts[ca.Verdict]++
	}
	return counts
}

// WriteFindings writes, for a person, one line for the legacy summary (if
// legacy records were given), each anchoring gap and each notice: the part
// of a report that `zt-audit daal check` and `ztlog daal reconcile` print
// alike.
func (r *Report) WriteFindings(w io.Writer) {
	if l := r.Legacy; l != nil {
		fmt.Fprintf(w, "legacy: %d record(s), %d anchor(s): %d matched, %d tampered, %d anchor(s) without record, %d record(s) without anchor\n",
			l.Records, l.Anchors, l.Matched, l.Tampered, l.NoRecord, l.Unanchored)
		if l.Batches > 0 {
			fmt.Fprintf(w, "legacy batches: %d logBatch anchor(s): %d matched, %d tampered, %d with a record missing, %d without imported records, %d matching nothing\n",
				l.Batches, l.BatchesMatched, l.BatchesTampered, l.BatchesRecordMissing, l.BatchesWithoutRecords, l.BatchesUnmatched)
		}
	}
	for _, ca := range r.OnChain {
		if ca.Verdict == "legacy" && ca.Method == "logBatch" {
			fmt.Fprintf(w, "  legacy batch  %-15s block %-8d tx %s: %s\n", ca.Finding, ca.Block, ca.TxHash, ca.Reason)
		}
	}
	for _, g := range r.Gaps {
		fmt.Fprintf(w, "gap: %s between %s and %s\n", g.Duration, g.FromTx, g.ToTx)
	}
	for _, n := range r.Notices {
		fmt.Fprintf(w, "notice: %s\n", n)
	}
}
