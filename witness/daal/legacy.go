package daal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// LegacyRecord is one audit record of the earlier ZT system, as its
// adapters answered a decision: {actor, action, resource, decision, reason,
// audit: {timestamp, previous_hash, current_hash, ...}}. The earlier system
// anchored each record's current_hash with logAction(actor, hash, metadata).
type LegacyRecord struct {
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Audit    struct {
		Timestamp    string `json:"timestamp"`
		PreviousHash string `json:"previous_hash"`
		CurrentHash  string `json:"current_hash"`
	} `json:"audit"`
}

// ParseLegacyRecords reads legacy records: one JSON object, a JSON array of
// them, or JSON lines.
func ParseLegacyRecords(raw []byte) ([]LegacyRecord, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, errors.New("legacy records: empty file")
	}
	var out []LegacyRecord
	check := func(i int, r LegacyRecord) error {
		h := r.Audit.CurrentHash
		if len(h) != 64 || strings.ToLower(h) != h {
			return fmt.Errorf("legacy record %d: audit.current_hash %q is not 64 lowercase hex", i+1, h)
		}
		if _, err := hex.DecodeString(h); err != nil {
			return fmt.Errorf("legacy record %d: audit.current_hash %q is not 64 lowercase hex", i+1, h)
		}
		return nil
	}
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &out); err != nil {
			return nil, fmt.Errorf("legacy records: %v", err)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(trimmed))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		var buf bytes.Buffer
		// A single (possibly pretty-printed) object, or one object a line.
		var one LegacyRecord
		if err := json.Unmarshal(trimmed, &one); err == nil {
			out = append(out, one)
		} else {
			for line := 1; sc.Scan(); line++ {
				l := bytes.TrimSpace(sc.Bytes())
				if len(l) == 0 {
					continue
				}
				buf.Reset()
				var r LegacyRecord
				if err := json.Unmarshal(l, &r); err != nil {
					return nil, fmt.Errorf("legacy records: line %d: %v", line, err)
				}
				out = append(out, r)
			}
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("legacy records: %v", err)
			}
		}
	}
	for i, r := range out {
		if err := check(i, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Hashes recomputes the record's hash in both field forms (see
// shared/testdata/legacy/README.md): the starter-adapter form (keys actor,
// action, resource, result, reason, timestamp, previousHash in that order)
// and the control-plane form (action, actor, decision, previous_hash,
// reason, resource, timestamp: sorted). Both are SHA-256 of compact JSON.
func (r LegacyRecord) Hashes() (starter, controlPlane [32]byte) {
	type kv struct{ k, v string }
	enc := func(fields []kv) [32]byte {
		var b bytes.Buffer
		b.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(jsonString(f.k))
			b.WriteByte(':')
			b.Write(jsonString(f.v))
		}
		b.WriteByte('}')
		return sha256.Sum256(b.Bytes())
	}
	starter = enc([]kv{{"actor", r.Actor}, {"action", r.Action}, {"resource", r.Resource}, {"result", r.Decision},
		{"reason", r.Reason}, {"timestamp", r.Audit.Timestamp}, {"previousHash", r.Audit.PreviousHash}})
	controlPlane = enc([]kv{{"action", r.Action}, {"actor", r.Actor}, {"decision", r.Decision},
		{"previous_hash", r.Audit.PreviousHash}, {"reason", r.Reason}, {"resource", r.Resource}, {"timestamp", r.Audit.Timestamp}})
	return starter, controlPlane
}

// jsonString encodes s as JSON.stringify would for ordinary text (no HTML
// escaping).
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// StatedHash is the record's audit.current_hash.
func (r LegacyRecord) StatedHash() [32]byte {
	var h [32]byte
	hex.Decode(h[:], []byte(r.Audit.CurrentHash))
	return h
}

// Reproduces reports whether the record's content hashes to its stated
// current_hash in either form.
func (r LegacyRecord) Reproduces() bool {
	s, c := r.Hashes()
	st := r.StatedHash()
	return s == st || c == st
}
