// Package daal anchors the log's checkpoints on the DAAL contract (an EVM
// contract, see package daalog) and reconciles the anchors with the chain
// and the log. DAAL.md at the repository root is its full description.
//
//   - Anchorer (AnchorConfig) queues the log's latest checkpoint when it is
//     due, sends logBatch(origin, root, Metadata) through a Chain signed by a
//     Signer, and tracks it to confirmation; every transition is recorded in
//     the Ledger before anything depends on it, so restarts never anchor
//     twice or lose an anchor.
//   - Reconcile (ReconcileConfig) verifies each anchor (receipt, contract,
//     sender, event, consistency with the log's tree through a Tree), scans
//     the contract's events for split views, checks the contract's code hash
//     and anchoring gaps, matches legacy anchors, and returns a Report with
//     Alerts.
//   - Prove and VerifyProof build and check a Proof of one entry against an
//     anchor, offline, with a ReceiptDump; VerifyEvidence checks a split-view
//     alert's Evidence.
//
// Wire formats, each with golden vectors in testdata/: the anchor metadata
// (Metadata), the ledger lines (Anchor), the receipt dump (ReceiptDump), the
// DAAL proof (Proof) and split-view evidence (Evidence).
//
// go-ethereum is imported here and in the commands that use this package
// only; the decision path, the log and verifier/ never link it.
package daal
