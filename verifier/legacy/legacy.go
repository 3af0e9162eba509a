// Package legacy verifies the hash-chained audit records of the earlier ZT
// adapter (before ztlog): each decision record carries
// audit.previous_hash, audit.current_hash and audit.kms_signature.
//
// The record forms are specified in legacy.md next to this file. In short,
// current_hash is the lowercase hex SHA-256 of a compact JSON object built
// from the record, in one of two forms:
//
//   - starter adapter: {"actor","action","resource","result","reason",
//     "timestamp","previousHash"} in that order, result = decision;
//   - control plane: {"action","actor","decision","previous_hash","reason",
//     "resource","timestamp"} (keys sorted).
//
// The first record of a chain has previous_hash = 64 zeros; each next
// record's previous_hash is the previous current_hash. kms_signature is an
// AWS KMS ECDSA_SHA_256 signature (ASN.1 DER, base64) over the 32-byte
// digest itself (MessageType DIGEST), checked with the key's public key.
//
// Verify reports every check as pass, fail, unverifiable or skipped. A
// placeholder signature (any algorithm other than ECDSA_SHA_256, such as
// MOCK_ECDSA_SHA_256) is unverifiable, never valid.
package legacy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Genesis is the previous_hash of the first record of a chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// KMSAlgorithm is the only kms_signature algorithm that can be verified.
const KMSAlgorithm = "ECDSA_SHA_256"

// The two forms of current_hash.
const (
	FormStarter      = "starter-adapter"
	FormControlPlane = "control-plane"
)

// Record is one legacy audit record. The decision fields are kept as raw
// JSON so that the hash input can be rebuilt exactly.
type Record struct {
	Actor    json.RawMessage `json:"actor"`
	Action   json.RawMessage `json:"action"`
	Resource json.RawMessage `json:"resource"`
	Decision json.RawMessage `json:"decision"`
	Reason   json.RawMessage `json:"reason"`
	Audit    *Audit          `json:"audit"`
}

// Audit is the record's audit block.
type Audit struct {
	Timestamp    json.RawMessage `json:"timestamp"`
	PreviousHash string          `json:"previous_hash"`
	CurrentHash  string          `json:"current_hash"`
	KMSSignature *KMSSignature   `json:"kms_signature"`
}

// KMSSignature is the record's signature block.
type KMSSignature struct {
	Algorithm string `json:"algorithm"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// ErrUnusable is wrapped by ReadRecords errors: the input is not a file of
// legacy records (exit status 2 in zt-audit, not a verification failure).
var ErrUnusable = errors.New("not a legacy audit record file")

// MaxRecords bounds how many records ReadRecords reads.
const MaxRecords = 1 << 20

// ReadRecords reads a file of records: one JSON object, a JSON array of
// objects, or a sequence of objects (JSON lines).
func ReadRecords(b []byte) ([]Record, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrUnusable)
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnusable, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var r json.RawMessage
			err := dec.Decode(&r)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: record %d: %w", ErrUnusable, len(raws), err)
			}
			if len(raws) == MaxRecords {
				return nil, fmt.Errorf("%w: more than %d records", ErrUnusable, MaxRecords)
			}
			raws = append(raws, r)
		}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrUnusable)
	}
	recs := make([]Record, len(raws))
	for i, raw := range raws {
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("%w: record %d is not a JSON object", ErrUnusable, i)
		}
		if err := json.Unmarshal(raw, &recs[i]); err != nil {
			return nil, fmt.Errorf("%w: record %d: %w", ErrUnusable, i, err)
		}
		r := &recs[i]
		if r.Audit == nil {
			return nil, fmt.Errorf("%w: record %d has no \"audit\" object", ErrUnusable, i)
		}
		for _, f := range []struct {
			name string
			v    json.RawMessage
		}{{"actor", r.Actor}, {"action", r.Action}, {"resource", r.Resource}, {"decision", r.Decision}, {"reason", r.Reason}, {"audit.timestamp", r.Audit.Timestamp}} {
			if _, err := scalar(f.v); err != nil {
				return nil, fmt.Errorf("%w: record %d field %q: %w", ErrUnusable, i, f.name, err)
			}
		}
	}
	return recs, nil
}

// scalar returns the decoded string of a JSON string, or "" with ok for
// null; anything else (or absence) is an error.
func scalar(v json.RawMessage) (*string, error) {
	if len(v) == 0 {
		return nil, errors.New("missing")
	}
	if string(v) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, errors.New("not a string or null")
	}
	return &s, nil
}

// Verdict is the outcome of one check.
type Verdict string

// The verdicts. Only pass (and skipped, when asked for) count as valid.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Unverifiable Verdict = "unverifiable"
	Skipped      Verdict = "skipped"
)

// Check is one verified property of one record.
type Check struct {
	// Name says what was checked, e.g. "record 0: current_hash".
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`
}

// RecordReport is what was found for one record.
type RecordReport struct {
	Index  int    `json:"index"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	// Decision and Timestamp are as recorded.
	Decision  string `json:"decision"`
	Timestamp string `json:"timestamp"`
	// Form is the hash form that reproduced current_hash ("" if none).
	Form   string  `json:"form,omitempty"`
	Checks []Check `json:"checks"`
}

// Report is the outcome of Verify.
type Report struct {
	Records []RecordReport `json:"records"`
	// Valid is true when every check passed (or was skipped on request).
	Valid bool `json:"valid"`
	// FirstProblem is the first failing check, or, when none failed, the
	// first unverifiable one; nil when Valid.
	FirstProblem *Check `json:"first_problem,omitempty"`
}

// Options adjust Verify.
type Options struct {
	// KMSKey is the KMS key's public key. Without it, ECDSA_SHA_256
	// signatures are unverifiable.
	KMSKey *ecdsa.PublicKey
	// HashOnly skips signature checks (reported as skipped) so that a
	// chain can be valid on its hashes alone.
	HashOnly bool
}

// Verify checks every record's current_hash (either form), the chain
// linkage across the records in file order, and every kms_signature.
func Verify(recs []Record, opts Options) *Report {
	rep := &Report{}
	for i, r := range recs {
		rr := RecordReport{Index: i, Actor: str(r.Actor), Action: str(r.Action), Decision: str(r.Decision), Timestamp: str(r.Audit.Timestamp)}
		name := func(s string) string { return fmt.Sprintf("record %d: %s", i, s) }
		add := func(c Check) { rr.Checks = append(rr.Checks, c) }

		// current_hash
		claimed := r.Audit.CurrentHash
		starter, control, controlASCII := Digests(r)
		switch {
		case !isHash(claimed):
			add(Check{name("current_hash"), Fail, fmt.Sprintf("%q is not 64 lowercase hex digits", claimed)})
		case claimed == starter:
			rr.Form = FormStarter
			add(Check{name("current_hash"), Pass, "reproduced by the starter-adapter form"})
		case claimed == control:
			rr.Form = FormControlPlane
			add(Check{name("current_hash"), Pass, "reproduced by the control-plane form"})
		case claimed == controlASCII:
			rr.Form = FormControlPlane
			add(Check{name("current_hash"), Pass, "reproduced by the control-plane form (non-ASCII escaped as \\uXXXX)"})
		default:
			add(Check{name("current_hash"), Fail, fmt.Sprintf("%s is not reproduced by either form (starter-adapter gives %s, control-plane %s): the record was altered after hashing", claimed, starter, control)})
		}

		// previous_hash and chain linkage
		prev := r.Audit.PreviousHash
		switch {
		case !isHash(prev):
			add(Check{name("previous_hash"), Fail, fmt.Sprintf("%q is not 64 lowercase hex digits", prev)})
		case i == 0 && prev == Genesis:
			add(Check{name("previous_hash"), Pass, "first record of the chain (genesis)"})
		case i == 0:
			add(Check{name("previous_hash"), Unverifiable, "the file starts in the middle of a chain: previous_hash " + prev + " names a record that is not in the file"})
		case prev == recs[i-1].Audit.CurrentHash:
			add(Check{name("previous_hash"), Pass, fmt.Sprintf("links to record %d", i-1)})
		case prev == Genesis:
			add(Check{name("previous_hash"), Fail, fmt.Sprintf("a new chain starts here, but record %d comes before it in the file: records were dropped or the chain restarted", i-1)})
		default:
			add(Check{name("previous_hash"), Fail, fmt.Sprintf("is %s, but record %d's current_hash is %s: a record was inserted, removed or reordered", prev, i-1, recs[i-1].Audit.CurrentHash)})
		}

		add(verifySignature(name("kms_signature"), r, opts))
		rep.Records = append(rep.Records, rr)
	}
	rep.Valid = true
	for _, v := range []Verdict{Fail, Unverifiable} {
		for _, rr := range rep.Records {
			for _, c := range rr.Checks {
				if c.Verdict == v && rep.FirstProblem == nil {
					c := c
					rep.FirstProblem = &c
					rep.Valid = false
				}
			}
		}
	}
	return rep
}

func verifySignature(name string, r Record, opts Options) Check {
	s := r.Audit.KMSSignature
	switch {
	case opts.HashOnly:
		return Check{name, Skipped, "signature checks skipped (hash only)"}
	case s == nil:
		return Check{name, Unverifiable, "the record has no kms_signature"}
	case s.Algorithm != KMSAlgorithm:
		return Check{name, Unverifiable, fmt.Sprintf("algorithm %q is not %s: a placeholder, not a signature (key_id %q)", s.Algorithm, KMSAlgorithm, s.KeyID)}
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return Check{name, Fail, "signature is not standard base64"}
	}
	digest, err := hex.DecodeString(r.Audit.CurrentHash)
	if err != nil || len(digest) != sha256.Size {
		return Check{name, Fail, "current_hash is not a 32-byte hex digest, so there is nothing it could sign"}
	}
	if opts.KMSKey == nil {
		return Check{name, Unverifiable, fmt.Sprintf("no KMS public key given for key_id %q (Options.KMSKey)", s.KeyID)}
	}
	if !ecdsa.VerifyASN1(opts.KMSKey, digest, sig) {
		return Check{name, Fail, fmt.Sprintf("ECDSA P-256 signature by key_id %q does not verify over the digest %s with the given key", s.KeyID, r.Audit.CurrentHash)}
	}
	return Check{name, Pass, fmt.Sprintf("ECDSA P-256 signature by key_id %q over the digest verifies", s.KeyID)}
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func str(v json.RawMessage) string {
	s, _ := scalar(v)
	if s == nil {
		return ""
	}
	return *s
}

// Digests returns the record's hash in the starter-adapter form, the
// control-plane form, and the control-plane form with non-ASCII escaped
// (as Python's json.dumps writes it by default).
func Digests(r Record) (starter, control, controlASCII string) {
	return digest(StarterInput(r, false)), digest(ControlPlaneInput(r, false)), digest(ControlPlaneInput(r, true))
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// StarterInput is the hash input of the starter-adapter form.
func StarterInput(r Record, asciiOnly bool) []byte {
	return object(asciiOnly,
		"actor", r.Actor, "action", r.Action, "resource", r.Resource,
		"result", r.Decision, "reason", r.Reason, "timestamp", r.Audit.Timestamp,
		"previousHash", quoted(r.Audit.PreviousHash))
}

// ControlPlaneInput is the hash input of the control-plane form.
func ControlPlaneInput(r Record, asciiOnly bool) []byte {
	return object(asciiOnly,
		"action", r.Action, "actor", r.Actor, "decision", r.Decision,
		"previous_hash", quoted(r.Audit.PreviousHash), "reason", r.Reason,
		"resource", r.Resource, "timestamp", r.Audit.Timestamp)
}

func quoted(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// object writes {"k":v,...} compactly, re-encoding string values the way
// ECMAScript JSON.stringify does (or with non-ASCII escaped).
func object(asciiOnly bool, kv ...any) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, kv[i].(string), asciiOnly)
		b.WriteByte(':')
		s, _ := scalar(kv[i+1].(json.RawMessage))
		if s == nil {
			b.WriteString("null")
		} else {
			writeString(&b, *s, asciiOnly)
		}
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func writeString(b *strings.Builder, s string, asciiOnly bool) {
	const hexdigits = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexdigits[r>>4])
			b.WriteByte(hexdigits[r&0xf])
		case asciiOnly && r > 0x7e:
			if r == utf8.RuneError {
				r = 0xfffd
			}
			var units []rune
			if r > 0xffff {
				r -= 0x10000
				units = []rune{0xd800 + r>>10, 0xdc00 + r&0x3ff}
			} else {
				units = []rune{r}
			}
			for _, u := range units {
				fmt.Fprintf(b, `\u%04x`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// ParseKMSPublicKey reads an ECDSA P-256 public key in PEM ("PUBLIC KEY",
// PKIX), as `aws kms get-public-key` gives it once wrapped in PEM.
func ParseKMSPublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found; want -----BEGIN PUBLIC KEY-----")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block is %q; want a PUBLIC KEY (never a private key)", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %w", err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 public key (KMS ECC_NIST_P256)")
	}
	return ec, nil
}
