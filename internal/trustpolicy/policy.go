// Package policy reads a transparency-log trust policy (C2SP tlog-policy, the
// Sigsum/Tessera policy text format) and verifies checkpoints against it: the
// log's signature by one of the policy's logs, and witness cosignatures
// (C2SP tlog-cosignature, cosignature/v1 Ed25519 or ML-DSA-44) meeting the
// policy's quorum.
//
// The format, as this package reads it (spec: policy.md next to this file):
//
//	# comment lines start with '#', possibly after whitespace
//	log <vkey> [<url>]
//	witness <name> <vkey> [<url>]
//	group <name> all|any|<k> <name>...
//	quorum <name>|none
//
// One policy file serves the auditor's offline verifier, the monitor, the
// witness and the log's own witness collection: Parse once, then use
// VerifyCheckpoint (verifiers), Witnesses with their URLs and Quorum's tree
// (the log and witnesses), or Satisfied with a set of cosigners.
//
// Verification is pure: bytes and a time in, a verdict out.
package trustpolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Signature types of signed-note verifier keys (C2SP signed-note,
// tlog-cosignature).
const (
	// TypeEd25519 is a plain Ed25519 note key (0x01), the usual log key.
	TypeEd25519 = 0x01
	// TypeECDSA is an ECDSA P-256 note key (0x02).
	TypeECDSA = 0x02
	// TypeCosignatureEd25519 is an Ed25519 cosignature/v1 key (0x04).
	TypeCosignatureEd25519 = 0x04
	// TypeCosignatureMLDSA44 is an ML-DSA-44 cosignature/v1 key (0x06).
	TypeCosignatureMLDSA44 = 0x06
)

// Implementation limits: the spec recommends supporting at least 32 of
// each; these bound the work a hostile policy file can cause.
const (
	MaxLogs      = 256
	MaxWitnesses = 1024
	MaxGroups    = 1024
	// MaxSize is the largest policy file Parse reads, in bytes.
	MaxSize = 1 << 20
)

// None is the predefined quorum name that requires no cosignature.
const None = "none"

// Policy is a parsed trust policy.
type Policy struct {
	// Logs are the accepted logs, in file order.
	Logs []*Log
	// Witnesses are the known witnesses, in file order.
	Witnesses []*Witness
	// Groups are the witness groups, in file order.
	Groups []*Group
	// Quorum is the witness or group whose witnessing makes a checkpoint
	// valid; nil means "quorum none" (no cosignature needed).
	Quorum Member
}

// Log is a log the policy accepts.
type Log struct {
	// Origin is the vkey's key name, which must be the checkpoint origin.
	Origin string
	// VKey is the verifier key as written.
	VKey string
	// Type is the key's signature type (TypeEd25519, ...).
	Type byte
	// URL is the optional URL after the key ("" if absent).
	URL string
	// Verifier checks the log's checkpoint signature.
	Verifier note.Verifier
	// Line is the policy line that defined the log.
	Line int

	key []byte // public key material, for duplicate detection
}

// Witness is a named cosigner.
type Witness struct {
	// Name is the witness's name in the policy (opaque bytes).
	Name string
	// VKey is the verifier key as written. Its key name is the cosigner
	// name in signature lines.
	VKey string
	// Type is the key's signature type as written. A plain Ed25519 key
	// (0x01) is taken as the same key for cosignature/v1, as
	// transparency-dev/formats and Tessera do.
	Type byte
	// URL is the optional witness URL (its tlog-witness submission prefix).
	URL string
	// Verifier checks the witness's cosignature/v1 signature lines.
	Verifier note.Verifier
	// Line is the policy line that defined the witness.
	Line int

	key []byte
}

// Group is a threshold group of witnesses and groups.
type Group struct {
	// Name is the group's name in the policy.
	Name string
	// Threshold is k: at least k members must have witnessed.
	Threshold int
	// Members are witnesses (*Witness) and groups (*Group).
	Members []Member
	// Line is the policy line that defined the group.
	Line int
}

// Member is a *Witness or a *Group.
type Member interface {
	// MemberName is the witness or group name.
	MemberName() string
	// Witnessed reports whether the member witnessed, given the set of
	// witnesses whose cosignatures verified.
	Witnessed(cosigned func(*Witness) bool) bool
}

// MemberName is the witness's name.
func (w *Witness) MemberName() string { return w.Name }

// Witnessed reports whether w cosigned.
func (w *Witness) Witnessed(cosigned func(*Witness) bool) bool { return cosigned(w) }

// MemberName is the group's name.
func (g *Group) MemberName() string { return g.Name }

// Witnessed reports whether at least Threshold members witnessed.
func (g *Group) Witnessed(cosigned func(*Witness) bool) bool {
	n := 0
	for _, m := range g.Members {
		if m.Witnessed(cosigned) {
			if n++; n >= g.Threshold {
				return true
			}
		}
	}
	return false
}

// Satisfied reports whether the set of witnesses that cosigned meets the
// quorum. "quorum none" is always satisfied.
func (p *Policy) Satisfied(cosigned func(*Witness) bool) bool {
	return p.Quorum == nil || p.Quorum.Witnessed(cosigned)
}

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("trust policy")

// SyntaxError is a policy line that Parse refuses.
type SyntaxError struct {
	// Line is 1-based; 0 for the file as a whole.
	Line int
	// Msg says what is wrong and what to write instead.
	Msg string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "trust policy: " + e.Msg
	}
	return fmt.Sprintf("trust policy line %d: %s", e.Line, e.Msg)
}

// Unwrap makes every SyntaxError an ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

func syntaxErr(line int, format string, args ...any) error {
	return &SyntaxError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a trust policy. It follows C2SP tlog-policy exactly and
// refuses anything else with the line and the reason.
func Parse(text []byte) (*Policy, error) {
	if len(text) > MaxSize {
		return nil, syntaxErr(0, "file is %d bytes, more than the %d this reader accepts", len(text), MaxSize)
	}
	line := 1
	for i, c := range text {
		switch {
		case c == '\n':
			line++
		case c == '\t', c >= 0x20 && c <= 0x7e, c >= 0x80:
		case c == '\r':
			return nil, syntaxErr(line, "carriage return (0x0D) at byte %d; only LF line endings are allowed", i)
		default:
			return nil, syntaxErr(line, "control character 0x%02X at byte %d; only tab and newline are allowed", c, i)
		}
	}
	p := &Policy{}
	names := map[string]Member{}
	quorumLine := 0
	lines := bytes.Split(text, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // the terminating newline of the last line
	}
	for i, raw := range lines {
		n := i + 1
		f := fields(raw)
		if len(f) == 0 || f[0][0] == '#' {
			continue
		}
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return nil, syntaxErr(n, "want \"log <vkey> [<url>]\", got %d fields%s", len(f), commentHint(f))
			}
			if len(p.Logs) == MaxLogs {
				return nil, syntaxErr(n, "more than %d logs", MaxLogs)
			}
			l, err := parseLog(n, f[1:])
			if err != nil {
				return nil, err
			}
			for _, o := range p.Logs {
				if bytes.Equal(o.key, l.key) {
					return nil, syntaxErr(n, "log key %q is the same public key as the log on line %d; list each log once", l.VKey, o.Line)
				}
			}
			for _, o := range p.Witnesses {
				if bytes.Equal(o.key, l.key) {
					return nil, syntaxErr(n, "log key %q is the public key of witness %q (line %d): a log cannot witness itself", l.VKey, o.Name, o.Line)
				}
			}
			p.Logs = append(p.Logs, l)
		case "witness":
			if len(f) < 3 || len(f) > 4 {
				return nil, syntaxErr(n, "want \"witness <name> <vkey> [<url>]\", got %d fields%s", len(f), commentHint(f))
			}
			if len(p.Witnesses) == MaxWitnesses {
				return nil, syntaxErr(n, "more than %d witnesses", MaxWitnesses)
			}
			if err := newName(n, f[1], names); err != nil {
				return nil, err
			}
			w, err := parseWitness(n, f[1:])
			if err != nil {
				return nil, err
			}
			for _, o := range p.Witnesses {
				if bytes.Equal(o.key, w.key) {
					return nil, syntaxErr(n, "witness %q has the same public key as witness %q (line %d); a witness is listed once", w.Name, o.Name, o.Line)
				}
			}
			for _, o := range p.Logs {
				if bytes.Equal(o.key, w.key) {
					return nil, syntaxErr(n, "witness %q has the public key of the log on line %d: a log cannot witness itself", w.Name, o.Line)
				}
			}
			p.Witnesses = append(p.Witnesses, w)
			names[w.Name] = w
		case "group":
			if len(f) < 4 {
				return nil, syntaxErr(n, "want \"group <name> all|any|<k> <member>...\" with at least one member")
			}
			if len(p.Groups) == MaxGroups {
				return nil, syntaxErr(n, "more than %d groups", MaxGroups)
			}
			if err := newName(n, f[1], names); err != nil {
				return nil, err
			}
			g, err := parseGroup(n, f[1:], names)
			if err != nil {
				return nil, err
			}
			p.Groups = append(p.Groups, g)
			names[g.Name] = g
		case "quorum":
			if len(f) != 2 {
				return nil, syntaxErr(n, "want \"quorum <name>\" (a witness, a group, or none), got %d fields%s", len(f), commentHint(f))
			}
			if quorumLine != 0 {
				return nil, syntaxErr(n, "second quorum line (the first is line %d); a policy has exactly one", quorumLine)
			}
			quorumLine = n
			if f[1] == None {
				break
			}
			m, ok := names[f[1]]
			if !ok {
				return nil, syntaxErr(n, "quorum %q is not a witness or group defined on an earlier line", f[1])
			}
			p.Quorum = m
		default:
			return nil, syntaxErr(n, "unknown keyword %q; a line is log, witness, group, quorum, a comment (#) or empty", f[0])
		}
	}
	if quorumLine == 0 {
		return nil, syntaxErr(0, "no quorum line; add \"quorum none\" to require no cosignatures, or \"quorum <witness-or-group>\"")
	}
	return p, nil
}

// commentHint explains a field count that a trailing comment caused.
func commentHint(f []string) string {
	for _, x := range f[1:] {
		if x[0] == '#' {
			return "; comments are whole lines starting with '#', not trailing text"
		}
	}
	return ""
}

// fields splits a line at runs of ASCII space and tab only.
func fields(line []byte) []string {
	var out []string
	start := -1
	for i, c := range line {
		if c == ' ' || c == '\t' {
			if start >= 0 {
				out = append(out, string(line[start:i]))
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, string(line[start:]))
	}
	return out
}

func newName(line int, name string, names map[string]Member) error {
	if name == None {
		return syntaxErr(line, "%q is the predefined quorum name and cannot name a witness or group", None)
	}
	if m, ok := names[name]; ok {
		return syntaxErr(line, "name %q is already used by the %s on line %d; witnesses and groups share one namespace", name, kindOf(m), lineOf(m))
	}
	return nil
}

func kindOf(m Member) string {
	if _, ok := m.(*Group); ok {
		return "group"
	}
	return "witness"
}

func lineOf(m Member) int {
	switch m := m.(type) {
	case *Group:
		return m.Line
	case *Witness:
		return m.Line
	}
	return 0
}

func parseLog(line int, f []string) (*Log, error) {
	name, typ, key, err := parseVKey(f[0])
	if err != nil {
		return nil, syntaxErr(line, "log key %q: %v", f[0], err)
	}
	var v note.Verifier
	switch typ {
	case TypeEd25519, TypeECDSA, TypeCosignatureEd25519, TypeCosignatureMLDSA44:
		v, err = fnote.NewVerifier(f[0])
	default:
		return nil, syntaxErr(line, "log key %q has signature type 0x%02x; a log key is Ed25519 (0x01), ECDSA (0x02) or a cosignature/v1 key (0x04, 0x06)", f[0], typ)
	}
	if err != nil {
		return nil, syntaxErr(line, "log key %q: %v", f[0], err)
	}
	l := &Log{Origin: name, VKey: f[0], Type: typ, Verifier: v, Line: line, key: key}
	if len(f) > 1 {
		l.URL = f[1]
	}
	return l, nil
}

func parseWitness(line int, f []string) (*Witness, error) {
	name, vkey := f[0], f[1]
	_, typ, key, err := parseVKey(vkey)
	if err != nil {
		return nil, syntaxErr(line, "witness %q key %q: %v", name, vkey, err)
	}
	switch typ {
	case TypeEd25519, TypeCosignatureEd25519, TypeCosignatureMLDSA44:
	default:
		return nil, syntaxErr(line, "witness %q key has signature type 0x%02x; a witness key is a cosignature/v1 key: 0x04 (Ed25519) or 0x06 (ML-DSA-44)", name, typ)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, syntaxErr(line, "witness %q key %q: %v", name, vkey, err)
	}
	w := &Witness{Name: name, VKey: vkey, Type: typ, Verifier: v, Line: line, key: key}
	if len(f) > 2 {
		w.URL = f[2]
	}
	return w, nil
}

func parseGroup(line int, f []string, names map[string]Member) (*Group, error) {
	g := &Group{Name: f[0], Line: line}
	members := f[2:]
	seen := map[string]bool{}
	for _, m := range members {
		if m == None {
			return nil, syntaxErr(line, "group %q: %q cannot be a group member", g.Name, None)
		}
		if seen[m] {
			return nil, syntaxErr(line, "group %q lists %q twice; each member counts once", g.Name, m)
		}
		seen[m] = true
		def, ok := names[m]
		if !ok {
			return nil, syntaxErr(line, "group %q: member %q is not a witness or group defined on an earlier line", g.Name, m)
		}
		g.Members = append(g.Members, def)
	}
	switch k := f[1]; k {
	case "all":
		g.Threshold = len(members)
	case "any":
		g.Threshold = 1
	default:
		n, err := strconv.Atoi(k)
		if err != nil || k[0] < '1' || k[0] > '9' || strconv.Itoa(n) != k {
			return nil, syntaxErr(line, "group %q threshold %q: want all, any, or a decimal k without sign or leading zeros", g.Name, k)
		}
		if n < 1 || n > len(members) {
			return nil, syntaxErr(line, "group %q threshold %d: want 1 <= k <= %d (the number of members)", g.Name, n, len(members))
		}
		g.Threshold = n
	}
	return g, nil
}

// parseVKey checks a signed-note verifier key: name+hex(key ID)+base64(type
// || key), with the key ID being SHA-256(name || "\n" || type || key)[:4].
func parseVKey(vkey string) (name string, typ byte, key []byte, err error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return "", 0, nil, errors.New("not a verifier key; want <name>+<8 hex digits>+<base64 key>")
	}
	if !validKeyName(name) {
		return "", 0, nil, errors.New("key name is empty, not UTF-8, or contains a space or '+'")
	}
	if len(hash16) != 8 {
		return "", 0, nil, fmt.Errorf("key ID %q is not 8 hex digits", hash16)
	}
	id, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil {
		return "", 0, nil, fmt.Errorf("key ID %q is not 8 hex digits", hash16)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(raw) < 2 {
		return "", 0, nil, errors.New("key material is not standard base64 of a signature type and a key")
	}
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(raw)
	if want := binary.BigEndian.Uint32(h.Sum(nil)); uint32(id) != want {
		return "", 0, nil, fmt.Errorf("key ID %s does not match the key (want %08x); the key was altered or copied wrongly", hash16, want)
	}
	return name, raw[0], raw[1:], nil
}

// validKeyName is the signed-note rule: non-empty, UTF-8, no Unicode spaces
// and no '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// Marshal writes the policy in the text form Parse reads: logs, witnesses,
// groups and the quorum, one per line, single-spaced. Parse(Marshal(p))
// gives the same policy.
func (p *Policy) Marshal() []byte {
	var b bytes.Buffer
	for _, l := range p.Logs {
		b.WriteString("log " + l.VKey)
		if l.URL != "" {
			b.WriteString(" " + l.URL)
		}
		b.WriteByte('\n')
	}
	for _, w := range p.Witnesses {
		b.WriteString("witness " + w.Name + " " + w.VKey)
		if w.URL != "" {
			b.WriteString(" " + w.URL)
		}
		b.WriteByte('\n')
	}
	for _, g := range p.Groups {
		b.WriteString("group " + g.Name + " ")
		switch {
		case g.Threshold == len(g.Members):
			b.WriteString("all")
		case g.Threshold == 1:
			b.WriteString("any")
		default:
			b.WriteString(strconv.Itoa(g.Threshold))
		}
		for _, m := range g.Members {
			b.WriteString(" " + m.MemberName())
		}
		b.WriteByte('\n')
	}
	if p.Quorum == nil {
		b.WriteString("quorum none\n")
	} else {
		b.WriteString("quorum " + p.Quorum.MemberName() + "\n")
	}
	return b.Bytes()
}

// LogFor returns the policy's log with the given origin, or nil.
func (p *Policy) LogFor(origin string) *Log {
	for _, l := range p.Logs {
		if l.Origin == origin {
			return l
		}
	}
	return nil
}
