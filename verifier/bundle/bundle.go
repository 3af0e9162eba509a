// Package bundle reads, builds and verifies evidence bundles: everything an
// auditor needs to verify one action offline with only a trust policy —
// the decision entry, the linked result entry when there is one, a C2SP
// tlog-proof for each into one cosigned checkpoint, and the receipt issued
// for the allow with the key that signed it, and the SPIFFE trust bundle
// roots the agent's attestation and the broker's statement chain to. The format is specified in
// bundle.md next to this file; vectors are in testdata/bundles.
//
// A bundle has exactly one encoding (Marshal's), so that every byte of it
// is covered by some check: Parse refuses any other.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zt-infra/ztlog/verifier/attestation"
)

// Format is the bundle format this package reads and writes.
const Format = "ztlog-evidence-bundle/v2"

// FormatV1 is the first format, without SPIFFE trust bundle material.
// Parse refuses it (see bundle.md, "Versions").
const FormatV1 = "ztlog-evidence-bundle/v1"

// MaxSize is the largest bundle Parse reads.
const MaxSize = 1 << 20

// Bundle is one action's evidence.
type Bundle struct {
	// Format is always Format.
	Format string `json:"format"`
	// Origin is the log's origin (the checkpoint's first line).
	Origin string `json:"origin"`
	// Decision is the decision entry and its proof.
	Decision Entry `json:"decision"`
	// Result is the broker's result entry for an allow, when there is one.
	Result *Entry `json:"result,omitempty"`
	// Receipt is the compact JWS issued for an allow, when the bundle's
	// maker holds it (agents and brokers do; the log does not keep it).
	Receipt string `json:"receipt,omitempty"`
	// ReceiptKey is the JWK (RFC 7517) that signed Receipt, as published in
	// the log's receipt JWKS. Its kid is its RFC 7638 thumbprint, which the
	// decision entry commits to, so the log vouches for it.
	ReceiptKey json.RawMessage `json:"receipt_key,omitempty"`
	// SPIFFE is the SPIFFE trust bundle material (X.509 authorities of the
	// signers' trust domains) that the attestation and the broker
	// statement chain to. It is evidence only when the auditor pins it
	// (bundle.md, "Trusting the SPIFFE roots").
	SPIFFE []attestation.Domain `json:"spiffe_bundle,omitempty"`
}

// Entry is one log entry with its proof.
type Entry struct {
	// Index is the entry's index in the log.
	Index uint64 `json:"index"`
	// Leaf is the entry exactly as committed (standard base64 in JSON).
	Leaf []byte `json:"entry"`
	// Proof is the C2SP tlog-proof@v1 of the entry, in text form, holding
	// the cosigned checkpoint.
	Proof string `json:"proof"`
}

// ErrMalformed is wrapped by Parse errors.
var ErrMalformed = errors.New("not an evidence bundle")

// Marshal writes b in its one encoding: compact JSON in field order, with
// a final newline.
func Marshal(b *Bundle) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Parse reads a bundle and refuses anything but Marshal's encoding of a
// bundle of this format.
func Parse(raw []byte) (*Bundle, error) {
	if len(raw) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxSize)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.Format == FormatV1 {
		return nil, fmt.Errorf("%w: format %q: version 1 bundles carry no SPIFFE trust bundle, so their attestations cannot be verified; this verifier reads %q: make the bundle again with zt-audit bundle or GET /v1/bundles/{index}", ErrMalformed, b.Format, Format)
	}
	if b.Format != Format {
		return nil, fmt.Errorf("%w: format %q, this verifier reads %q", ErrMalformed, b.Format, Format)
	}
	again, err := Marshal(&b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(again, raw) {
		return nil, fmt.Errorf("%w: not in the bundle's one encoding (compact JSON, fields in order, standard base64, final newline): re-encode it with zt-audit bundle, or it was altered", ErrMalformed)
	}
	return &b, nil
}

// IsBundle reports whether raw looks like an evidence bundle (any
// version), for commands that recognize files by content.
func IsBundle(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte(`{"format":"ztlog-evidence-bundle/`))
}
