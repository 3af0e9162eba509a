package daal

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/zt-infra/ztlog/verifier/legacy"
)

// Legacy records are the earlier ZT system's audit records
// (verifier/legacy reads them and recomputes their hashes). That system
// anchored each record's audit.current_hash with
// logAction(actor, hash, metadata); reconciliation matches those anchors
// to imported records.

// ParseLegacyRecords reads legacy records (one JSON object, an array, or
// JSON lines; see verifier/legacy) and requires each to state its
// current_hash as 64 lowercase hex.
func ParseLegacyRecords(raw []byte) ([]legacy.Record, error) {
	recs, err := legacy.ReadRecords(raw)
	if err != nil {
		return nil, fmt.Errorf("legacy records: %w", err)
	}
	for i, r := range recs {
		if _, ok := legacyStated(r); !ok {
			return nil, fmt.Errorf("legacy record %d: audit.current_hash %q is not 64 lowercase hex", i+1, r.Audit.CurrentHash)
		}
	}
	return recs, nil
}

// ReadLegacyRecords reads the legacy ZT audit records in the file at path
// (see ParseLegacyRecords).
func ReadLegacyRecords(path string) ([]legacy.Record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := ParseLegacyRecords(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

// legacyStated is a record's audit.current_hash.
func legacyStated(r legacy.Record) ([32]byte, bool) {
	var h [32]byte
	s := r.Audit.CurrentHash
	if len(s) != 64 || strings.ToLower(s) != s {
		return h, false
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err == nil
}

// legacyComputed are the hashes the record's content has in every field
// form (starter-adapter, control-plane, control-plane with ASCII escapes).
func legacyComputed(r legacy.Record) [][32]byte {
	a, b, c := legacy.Digests(r)
	var out [][32]byte
	for _, s := range []string{a, b, c} {
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(s)); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// legacyReproduces reports whether the record's content hashes to its
// stated current_hash in some form.
func legacyReproduces(r legacy.Record) bool {
	st, ok := legacyStated(r)
	if !ok {
		return false
	}
	for _, h := range legacyComputed(r) {
		if h == st {
			return true
		}
	}
	return false
}

// legacyText is a record's string field for messages.
func legacyText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
