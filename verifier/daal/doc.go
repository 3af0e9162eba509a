// Package daal is the verifier's side of DAAL, the anchoring of the log's
// checkpoints on the DAALog contract (DAAL.md at the repository root): the
// formats and every check, with no I/O of its own.
//
//   - Formats, each with golden vectors in testdata/: the anchor metadata
//     (Metadata), the receipt dump (ReceiptDump), the DAAL proof (Proof),
//     split-view evidence (Evidence), the anchor ledger's lines (Anchor,
//     ParseLedger) and the reconciliation report (Report, Alert).
//   - The contract's calls and events as verification reads them
//     (ParseCall, ParseActionLogged; abi.go).
//   - VerifyProof and VerifyEvidence check a proof or split-view evidence
//     offline, trusting only a Trust.
//   - Reconcile verifies each anchor (receipt, contract, sender, event,
//     consistency with the log's tree through a Tree), scans the contract's
//     events for split views, checks the contract's code hash and anchoring
//     gaps, matches legacy anchors, and returns a Report with Alerts; Prove
//     builds the Proof of one entry. Both read the chain through a
//     ChainReader and the log through a Source, and take the clock in their
//     configuration: the operator passes go-ethereum's client and its
//     ledger (log/anchor/daal), the auditor a minimal JSON-RPC reader
//     (verifier/daal/ethrpc).
//
// Of go-ethereum this package links only what offline verification needs
// (common, crypto, rlp, core/types, accounts/abi); never its RPC client,
// keystore or bindings (boundary_test.go in log/anchor/daal checks it).
package daal
