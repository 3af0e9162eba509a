// Package daal is the operator's side of DAAL: it anchors the log's
// checkpoints on the DAALog contract (see package daalog) and keeps the
// anchor ledger. DAAL.md at the repository root is its full description;
// the formats and every check are verifier/daal's.
//
//   - Anchorer (AnchorConfig) queues the log's latest checkpoint when it is
//     due, sends logBatch(origin, root, Metadata) through a Chain signed by a
//     Signer, and tracks it to confirmation; every transition is recorded in
//     the Ledger before anything depends on it, so restarts never anchor
//     twice or lose an anchor. It runs verifier/daal's Reconcile, with the
//     Ledger, on a schedule.
//   - Chain is a JSON-RPC endpoint (go-ethereum's ethclient) and the
//     contract on it; it is the ChainReader verifier/daal reads.
//   - Signer and the keystore files (LoadKeystore, WriteKeystore), Deploy,
//     Metrics, and OpenSource (a log by URL or storage directory).
//
// go-ethereum's client, keystore and bindings are imported here and in the
// commands that use this package only; the decision path, the log's
// server and verifier/ never link them (boundary_test.go).
package daal
