package entry

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/zt-infra/ztlog/internal/jcs"
	"github.com/zt-infra/ztlog/internal/text"
)

// Version is the entry envelope version this package writes and reads.
const Version = 1

// MaxEntrySize is the largest encoded entry, in bytes, that the log accepts:
// C2SP tlog-tiles entry bundles prefix each entry with a big-endian uint16
// length, so no entry can be longer than 65535 bytes.
const MaxEntrySize = 1<<16 - 1

// Kind names what an entry records.
type Kind string

// The entry kinds of envelope version 1.
const (
	// KindDecision records an authorization decision (allow or deny).
	KindDecision Kind = "decision"
	// KindResult records a broker's signed report of work it ran for an allow.
	KindResult Kind = "result"
	// KindAgent records the registration or revocation of an agent identity.
	KindAgent Kind = "agent"
	// KindPolicy records a policy version coming into force.
	KindPolicy Kind = "policy"
)

// Header is the part of the envelope every entry carries: the envelope
// version and the kind of the body.
type Header struct {
	V    int  `json:"v"`
	Kind Kind `json:"kind"`
}

// Entry is one of the entry kinds: *Decision, *Result, *Agent or *Policy.
type Entry interface {
	// EntryKind is the kind written into the envelope.
	EntryKind() Kind
	// Validate reports the first field that breaks the kind's rules.
	Validate() error
	header() *Header
}

// Errors returned by Marshal and Parse. They are wrapped with the detail of
// what was wrong; test with errors.Is.
var (
	// ErrMalformed: the bytes are not one JSON object of a known kind with
	// valid fields.
	ErrMalformed = errors.New("malformed entry")
	// ErrNotCanonical: the bytes are valid JSON but not their RFC 8785
	// canonical form, so they are not an entry (an entry has exactly one
	// encoding).
	ErrNotCanonical = errors.New("entry is not in RFC 8785 canonical form")
	// ErrUnsupportedVersion: the envelope version is not one this package reads.
	ErrUnsupportedVersion = errors.New("unsupported entry version")
	// ErrTooLarge: the encoded entry is longer than MaxEntrySize.
	ErrTooLarge = errors.New("entry too large")
)

// FieldError names the field of an entry that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Reason) }

// Unwrap makes every FieldError an ErrMalformed.
func (e *FieldError) Unwrap() error { return ErrMalformed }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Marshal validates e and returns its canonical encoding: the RFC 8785 (JCS)
// serialization of the envelope, which is the exact leaf committed to the log.
func Marshal(e Entry) ([]byte, error) { return marshal(e, make([]byte, 0, 1024)) }

// marshal is Marshal appending to dst (empty; its capacity is reused).
func marshal(e Entry, dst []byte) ([]byte, error) {
	h := e.header()
	h.V, h.Kind = Version, e.EntryKind()
	if n, ok := e.(interface{ normalize() }); ok {
		n.normalize()
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	out, err := appendCanonical(dst, e)
	if err != nil {
		if out, err = marshalReference(e); err != nil {
			return nil, err
		}
	}
	if len(out) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d (C2SP tlog-tiles); send digests instead of contents", ErrTooLarge, len(out), MaxEntrySize)
	}
	return out, nil
}

// marshalReference is the definition of an entry's encoding: encoding/json
// (HTML escaping off), then RFC 8785 canonicalization. appendCanonical
// writes the same bytes directly for every value it accepts.
func marshalReference(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	out, err := jcs.Canonicalize(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: canonicalize: %w", ErrMalformed, err)
	}
	return out, nil
}

// Parse reads one leaf. It accepts only what Marshal produces: canonical JSON,
// a supported version, a known kind, no unknown fields, every field valid.
func Parse(leaf []byte) (Entry, error) {
	// Fast path: an entry whose re-encoding is byte-identical to the leaf
	// is canonical by construction (Marshal's output is), so the leaf need
	// not be canonicalized first. Anything else takes the full path, whose
	// errors are the specification's.
	if e := parseExact(leaf); e != nil {
		return e, nil
	}
	return parseStrict(leaf)
}

// parseExact returns the entry if leaf is exactly Marshal's encoding of a
// valid entry, and nil otherwise.
func parseExact(leaf []byte) Entry {
	if len(leaf) > MaxEntrySize {
		return nil
	}
	// Find the kind without decoding the whole entry twice: try the known
	// kinds named by "kind" members, first one first (usually the
	// top-level one). A nested member naming another kind costs one more
	// attempt: the round trip writes the type's own kind at the top, so
	// only the right guess can pass it.
	var tried [4]Kind
	n := 0
	for rest := leaf; ; {
		i := bytes.Index(rest, kindMember)
		if i < 0 {
			return nil
		}
		rest = rest[i+len(kindMember):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return nil
		}
		k := Kind(rest[:j])
		if slices.Contains(tried[:n], k) {
			continue
		}
		e := newEntry(k)
		if e == nil {
			continue
		}
		tried[n] = k
		n++
		if roundTrips(leaf, e) {
			return e
		}
		if n == len(tried) {
			return nil
		}
	}
}

var kindMember = []byte(`"kind":"`)

// roundTrips decodes leaf into e and reports whether Marshal writes leaf
// back exactly.
func roundTrips(leaf []byte, e Entry) bool {
	// encoding/json/v2 semantics: member names match exactly, duplicates
	// and invalid UTF-8 are refused; the round trip decides the rest.
	if jsonv2.Unmarshal(leaf, e, jsonv2.RejectUnknownMembers(true)) != nil {
		return false
	}
	bp := roundTripBuffers.Get().(*[]byte)
	again, err := marshal(e, (*bp)[:0])
	ok := err == nil && bytes.Equal(again, leaf)
	if again != nil && cap(again) <= MaxEntrySize {
		*bp = again
	}
	roundTripBuffers.Put(bp)
	return ok
}

// roundTripBuffers hold the re-encodings roundTrips compares and drops (a
// whole-log audit parses every entry: one less allocation of the entry's
// size each).
var roundTripBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func newEntry(k Kind) Entry {
	switch k {
	case KindDecision:
		return new(Decision)
	case KindResult:
		return new(Result)
	case KindAgent:
		return new(Agent)
	case KindPolicy:
		return new(Policy)
	}
	return nil
}

func parseStrict(leaf []byte) (Entry, error) {
	if len(leaf) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(leaf), MaxEntrySize)
	}
	if !utf8.Valid(leaf) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	canon, err := jcs.Canonicalize(leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(canon, leaf) {
		return nil, ErrNotCanonical
	}
	var h Header
	if err := json.Unmarshal(leaf, &h); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if h.V != Version {
		return nil, fmt.Errorf("%w: v=%d, this reader knows v=%d", ErrUnsupportedVersion, h.V, Version)
	}
	e := newEntry(h.Kind)
	if e == nil {
		return nil, fieldErr("kind", "unknown kind %q (want decision, result, agent or policy)", h.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	// encoding/json matches field names case-insensitively and fills
	// defaults for missing fields; only the exact bytes Marshal writes are
	// an entry.
	again, err := Marshal(e)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, leaf) {
		return nil, fmt.Errorf("%w: fields are not exactly as written by this encoder (field name case, empty lists, missing fields)", ErrNotCanonical)
	}
	return e, nil
}

// Digest returns the content digest form used throughout the contract:
// "sha256:" followed by 64 lowercase hex digits.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// FormatTime returns t in the entry time form: RFC 3339 in UTC with
// nanoseconds as needed (time.RFC3339Nano), always ending in "Z".
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseTime reads a time in the entry time form, and only that form: the
// one FormatTime writes (so "10:00:00.100Z" is refused; it is "10:00:00.1Z").
func ParseTime(s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") {
		return time.Time{}, errors.New("not in UTC (must end in Z)")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	if FormatTime(t) != s {
		return time.Time{}, fmt.Errorf("not in the entry time form (want %s)", FormatTime(t))
	}
	return t, nil
}

func checkTime(field, s string) error {
	if _, err := ParseTime(s); err != nil {
		return fieldErr(field, "%v", err)
	}
	return nil
}

func checkDigest(field, s string, required bool) error {
	if s == "" {
		if required {
			return fieldErr(field, "missing")
		}
		return nil
	}
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok || !text.IsLowerHex(hexPart, 64) {
		return fieldErr(field, "want sha256:<64 lowercase hex digits>")
	}
	return nil
}

// isBase64 reports whether s decodes as standard base64 (as
// base64.StdEncoding.DecodeString would), without keeping the bytes, and
// how many bytes it decodes to.
func isBase64(s string) (int, bool) {
	var scratch [2048]byte
	buf := scratch[:]
	if n := base64.StdEncoding.DecodedLen(len(s)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf, unsafe.Slice(unsafe.StringData(s), len(s)))
	return n, err == nil
}

// under names the field err is about: prefix, then the FieldError's own
// field (checks on the fast path pass only the last part, so the full
// name is built only when something is wrong).
func under(prefix string, err error) error {
	if fe, ok := err.(*FieldError); ok {
		fe.Field = prefix + fe.Field
	}
	return err
}

func checkSPIFFEID(field, s string, required bool) error {
	if s == "" {
		if required {
			return fieldErr(field, "missing")
		}
		return nil
	}
	if err := ValidSPIFFEID(s); err != nil {
		return fieldErr(field, "%v", err)
	}
	return nil
}

func checkText(field, s string, max int) error {
	if s == "" {
		return fieldErr(field, "missing")
	}
	return checkOptionalText(field, s, max)
}

func checkOptionalText(field, s string, max int) error {
	if len(s) > max {
		return fieldErr(field, "longer than %d bytes", max)
	}
	if m := text.RefusedMessage(s); m != "" {
		return fieldErr(field, "%s", m)
	}
	return nil
}
