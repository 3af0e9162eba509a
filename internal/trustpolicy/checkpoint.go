package trustpolicy

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"golang.org/x/mod/sumdb/note"
)

// Outcomes of VerifyCheckpoint, wrapped with detail; test with errors.Is.
var (
	// ErrMalformedCheckpoint: not a signed note holding a C2SP checkpoint.
	ErrMalformedCheckpoint = errors.New("malformed checkpoint")
	// ErrUnknownLog: no signature line is from a log the policy names
	// (or the policy names no log).
	ErrUnknownLog = errors.New("checkpoint is not signed by a log in the policy")
	// ErrLogSignature: a signature line carries a policy log's key name and
	// ID, but the signature does not verify.
	ErrLogSignature = errors.New("log signature does not verify")
	// ErrOrigin: the checkpoint's origin is not the signing log's key name.
	ErrOrigin = errors.New("checkpoint origin does not match the log key")
	// ErrQuorum: the valid cosignatures do not meet the policy's quorum.
	ErrQuorum = errors.New("witness quorum not met")
)

// Checkpoint is a checkpoint that verified against a policy.
type Checkpoint struct {
	// Origin, Size and Hash are the checkpoint body's first three lines.
	Origin string
	Size   uint64
	Hash   []byte
	// Extensions are the body's extension lines, if any (unauthenticated
	// by ML-DSA cosignatures; see tlog-cosignature).
	Extensions []string
	// Note is the signed note as given; Body its text part.
	Note []byte
	Body []byte
	// Log is the policy log whose signature verified.
	Log *Log
	// Cosignatures are the policy witnesses whose cosignatures verified,
	// in signature-line order.
	Cosignatures []Cosignature
	// Rejected are signature lines with a policy witness's key name and ID
	// that did not count: a signature that does not verify, or a timestamp
	// in the future. A monitor alerts on these.
	Rejected []Rejection
	// Unknown are signature lines whose key the policy does not name
	// (ignored, as signed-note requires; a monitor reports them).
	Unknown []note.Signature
}

// Cosignature is a verified witness cosignature.
type Cosignature struct {
	Witness *Witness
	// Time is the cosignature's timestamp.
	Time time.Time
}

// Rejection is a cosignature line from a policy witness that did not count.
type Rejection struct {
	Witness *Witness
	Reason  string
}

// VerifyOptions adjust VerifyCheckpoint.
type VerifyOptions struct {
	// Now is the verifier's clock. When non-zero, cosignatures with a
	// timestamp later than Now+MaxSkew are rejected.
	Now time.Time
	// MaxSkew is the clock difference tolerated (default 5 minutes).
	MaxSkew time.Duration
}

// DefaultMaxSkew is VerifyOptions.MaxSkew's default.
const DefaultMaxSkew = 5 * time.Minute

// Cosigned reports whether w's cosignature verified.
func (c *Checkpoint) Cosigned(w *Witness) bool {
	for _, s := range c.Cosignatures {
		if s.Witness == w {
			return true
		}
	}
	return false
}

// recorder wraps a verifier and records whether each signature verified,
// so that note.Open's strict parsing can be reused while one bad
// cosignature is reported rather than failing the whole note.
type recorder struct {
	note.Verifier
	results *[]verdict
}

type verdict struct {
	name string
	hash uint32
	sig  []byte
	ok   bool
}

func (r recorder) Verify(msg, sig []byte) bool {
	ok := r.Verifier.Verify(msg, sig)
	*r.results = append(*r.results, verdict{r.Name(), r.KeyHash(), append([]byte(nil), sig...), ok})
	return true
}

type keyed struct {
	name string
	hash uint32
}

// VerifyCheckpoint verifies a signed checkpoint against the policy: the
// note is well formed, it is signed by one of the policy's logs whose key
// name is the checkpoint's origin, every signature line from a policy key
// is checked, and the witnesses whose cosignatures verify meet the quorum.
// Signature lines from keys the policy does not name are ignored (and
// listed in Unknown).
func (p *Policy) VerifyCheckpoint(signed []byte, opts VerifyOptions) (*Checkpoint, error) {
	if opts.MaxSkew == 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	if len(p.Logs) == 0 {
		return nil, fmt.Errorf("%w: the policy names no log; add a \"log <vkey>\" line", ErrUnknownLog)
	}
	var results []verdict
	logs := map[keyed]*Log{}
	witnesses := map[keyed]*Witness{}
	var vs []note.Verifier
	for _, l := range p.Logs {
		logs[keyed{l.Verifier.Name(), l.Verifier.KeyHash()}] = l
		vs = append(vs, recorder{l.Verifier, &results})
	}
	for _, w := range p.Witnesses {
		k := keyed{w.Verifier.Name(), w.Verifier.KeyHash()}
		if _, clash := logs[k]; clash {
			continue // same key name and ID as a log: the log's reading wins
		}
		witnesses[k] = w
		vs = append(vs, recorder{w.Verifier, &results})
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified):
		return nil, fmt.Errorf("%w: none of its %d signature lines is from a key in the policy (%s); check that the policy is for this log", ErrUnknownLog, len(unverified.Note.UnverifiedSigs), sigNames(unverified.Note.UnverifiedSigs))
	case err != nil:
		return nil, fmt.Errorf("%w: %w (want a C2SP signed note: body, empty line, \"— <name> <base64>\" lines)", ErrMalformedCheckpoint, err)
	}
	cp := &Checkpoint{Note: signed, Body: []byte(n.Text), Unknown: n.UnverifiedSigs}
	if err := cp.parseBody(); err != nil {
		return nil, err
	}
	for _, r := range results {
		k := keyed{r.name, r.hash}
		if l, ok := logs[k]; ok {
			if !r.ok {
				return nil, fmt.Errorf("%w: the signature line of %q (key ID %08x) does not verify over this checkpoint; the checkpoint was altered or the line forged", ErrLogSignature, r.name, r.hash)
			}
			if cp.Log == nil {
				cp.Log = l
			}
			continue
		}
		w := witnesses[k]
		if !r.ok {
			cp.Rejected = append(cp.Rejected, Rejection{w, "cosignature does not verify"})
			continue
		}
		if len(r.sig) < 8 {
			cp.Rejected = append(cp.Rejected, Rejection{w, "cosignature has no timestamp"})
			continue
		}
		ts := binary.BigEndian.Uint64(r.sig)
		if ts > 1<<63-1 {
			cp.Rejected = append(cp.Rejected, Rejection{w, "cosignature timestamp exceeds 2^63-1"})
			continue
		}
		t := time.Unix(int64(ts), 0).UTC()
		if !opts.Now.IsZero() && t.After(opts.Now.Add(opts.MaxSkew)) {
			cp.Rejected = append(cp.Rejected, Rejection{w, fmt.Sprintf("cosignature timestamp %s is in the future (now %s)", t.Format(time.RFC3339), opts.Now.UTC().Format(time.RFC3339))})
			continue
		}
		cp.Cosignatures = append(cp.Cosignatures, Cosignature{Witness: w, Time: t})
	}
	if cp.Log == nil {
		return nil, fmt.Errorf("%w: only witness signatures are from policy keys", ErrUnknownLog)
	}
	if cp.Log.Origin != cp.Origin {
		return nil, fmt.Errorf("%w: origin %q, signed by the policy log %q", ErrOrigin, cp.Origin, cp.Log.Origin)
	}
	if !p.Satisfied(cp.Cosigned) {
		return cp, fmt.Errorf("%w: %s", ErrQuorum, p.Explain(cp.Cosigned))
	}
	return cp, nil
}

func sigNames(sigs []note.Signature) string {
	var names []string
	for _, s := range sigs {
		names = append(names, fmt.Sprintf("%s %08x", s.Name, s.Hash))
	}
	return strings.Join(names, ", ")
}

// parseBody reads the C2SP tlog-checkpoint note text.
func (c *Checkpoint) parseBody() error {
	text := string(c.Body)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return fmt.Errorf("%w: the note text has %d lines; a checkpoint has origin, size and root hash", ErrMalformedCheckpoint, len(lines))
	}
	if lines[0] == "" {
		return fmt.Errorf("%w: empty origin line", ErrMalformedCheckpoint)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return fmt.Errorf("%w: tree size %q is not a decimal without leading zeros", ErrMalformedCheckpoint, lines[1])
	}
	hash, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(hash) != 32 {
		return fmt.Errorf("%w: root hash %q is not the base64 of 32 bytes", ErrMalformedCheckpoint, lines[2])
	}
	for i, e := range lines[3:] {
		if e == "" {
			return fmt.Errorf("%w: extension line %d is empty", ErrMalformedCheckpoint, i+1)
		}
	}
	c.Origin, c.Size, c.Hash = lines[0], size, hash
	c.Extensions = lines[3:]
	return nil
}

// Explain says, in words, which witnesses cosigned and whether each group
// on the way to the quorum is met, e.g.
// `quorum "X-and-Y" not met: group "X-witnesses" has 1 of the 2 it needs (X1)`.
func (p *Policy) Explain(cosigned func(*Witness) bool) string {
	if p.Quorum == nil {
		return "quorum none: no cosignature needed"
	}
	var signed []string
	for _, w := range p.Witnesses {
		if cosigned(w) {
			signed = append(signed, w.Name)
		}
	}
	who := "no policy witness cosigned"
	if len(signed) > 0 {
		who = "cosigned by " + strings.Join(signed, ", ")
	}
	if p.Quorum.Witnessed(cosigned) {
		return fmt.Sprintf("quorum %q met; %s", p.Quorum.MemberName(), who)
	}
	return fmt.Sprintf("quorum %q not met: %s; %s", p.Quorum.MemberName(), shortfall(p.Quorum, cosigned), who)
}

// shortfall names the deepest unmet requirement under m.
func shortfall(m Member, cosigned func(*Witness) bool) string {
	switch m := m.(type) {
	case *Witness:
		return fmt.Sprintf("witness %q did not cosign", m.Name)
	case *Group:
		var have []string
		var missing []Member
		for _, c := range m.Members {
			if c.Witnessed(cosigned) {
				have = append(have, c.MemberName())
			} else {
				missing = append(missing, c)
			}
		}
		s := fmt.Sprintf("group %q has %d of the %d it needs", m.Name, len(have), m.Threshold)
		if len(have) > 0 {
			s += " (" + strings.Join(have, ", ") + ")"
		}
		// When one more member would do, say what that member lacks.
		if len(have)+1 == m.Threshold && len(missing) == 1 {
			if g, ok := missing[0].(*Group); ok {
				s += "; " + shortfall(g, cosigned)
			}
		}
		return s
	}
	return ""
}

// Outcomes of VerifyInclusion, wrapped with detail; test with errors.Is.
var (
	// ErrInclusion: the inclusion proof does not lead from the leaf to the
	// checkpoint's root hash.
	ErrInclusion = errors.New("inclusion proof does not verify")
	// ErrRange: an index or size is outside the checkpoint's tree.
	ErrRange = errors.New("index or size outside the tree")
)

// VerifyInclusion checks that leafHash is at index in the tree of cp, given
// the audit path (leaf's sibling first).
func (cp *Checkpoint) VerifyInclusion(index uint64, leafHash []byte, path [][]byte) error {
	if index >= cp.Size {
		return fmt.Errorf("%w: index %d is not in a tree of size %d", ErrRange, index, cp.Size)
	}
	if err := merkleproof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leafHash, path, cp.Hash); err != nil {
		b64 := base64.StdEncoding.EncodeToString
		return fmt.Errorf("%w: leaf %s at index %d, tree size %d, root %s: %w", ErrInclusion, b64(leafHash), index, cp.Size, b64(cp.Hash), err)
	}
	return nil
}
