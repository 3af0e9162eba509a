// Package attest holds ztlog's in-toto attestations: the runtime-context and
// broker-result predicates (in-toto Statement v1) and DSSE signing and
// verification with keys from X.509-SVIDs. It is filled in by the
// attested-actions work (issue 5); the log and the verifier do not depend on
// it yet.
package attest
