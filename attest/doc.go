// Package attest holds ztlog's in-toto attestations: two predicates about
// one action — the agent's runtime context and the broker's result — in
// in-toto Statement v1 (github.com/in-toto/attestation/go/v1), serialized
// with protojson in JCS canonical form, signed as DSSE envelopes
// (go-securesystemslib dsse, payloadType application/vnd.in-toto+json) with
// the key of an X.509-SVID, so that the signer is a SPIFFE ID chained to the
// trust bundle. The formats are specified in attest.md next to this file,
// with JSON Schemas in schema/ and golden vectors in testdata/attestations.
//
// Signing needs an X.509-SVID (ECDSA or Ed25519). Verification is pure:
// envelope bytes, the signer chain, the trust bundle and a time in; the
// verified statement or a typed error out (ErrMalformed, ErrSignature,
// ErrChain, ErrSigner, ErrSubject, ErrExpired). The payload is verified and
// parsed exactly as received, never re-encoded.
package attest

import _ "embed"

// JSON Schemas (draft 2020-12) of the two predicates.
var (
	//go:embed schema/runtime-context.v1.schema.json
	RuntimeContextSchema []byte
	//go:embed schema/broker-result.v1.schema.json
	BrokerResultSchema []byte
)
