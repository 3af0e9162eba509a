// Package witness holds ztlog's C2SP tlog-witness implementation and its
// federation: cross-checks of partner logs and split-view evidence. (DAAL
// anchoring is not witnessing: it lives in log/anchor/daal and
// verifier/daal.)
//
// The witness (cmd/zt-witness) is built from one package per concept:
//
//   - tlogwitness: the add-checkpoint request and answer formats
//   - cosigner: the witness's cosignature/v1 keys (Ed25519, ML-DSA-44)
//   - state: the durable, atomically replaced latest cosigned checkpoint per log
//   - config: the configuration file (logs, peers, federation), reloaded on change
//   - server: the HTTP service (POST /add-checkpoint, GET /<origin hash>/checkpoint)
//   - evidence: filing split-view evidence (format: verifier/splitview) and alerting
//   - federation: zt-witness federate, cross-checking partner logs and peer witnesses
//
// The log's side of witnessing is log/witnessing: a trust policy
// (internal/trustpolicy) turned into Tessera's witness group, with each
// witness's state for /readyz.
package witness
