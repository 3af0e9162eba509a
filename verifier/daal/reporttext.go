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
	}
	for _, g := range r.Gaps {
		fmt.Fprintf(w, "gap: %s between %s and %s\n", g.Duration, g.FromTx, g.ToTx)
	}
	for _, n := range r.Notices {
		fmt.Fprintf(w, "notice: %s\n", n)
	}
}
