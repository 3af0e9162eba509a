// Package witness holds ztlog's C2SP tlog-witness implementation, witness
// policy, federation cross-checks, split-view evidence, and DAAL anchoring.
// It is filled in by the witness (issue 7) and DAAL (issue 8) work.
package witness
