// Package splitview reads, writes and verifies split-view evidence: a
// self-contained file showing that a transparency log signed two
// checkpoints that cannot both be true.
//
// The format (ztlog split-view evidence v1, JSON) is specified in
// splitview.md next to this file, with golden vectors in
// testdata/splitview/. Verification is pure: bytes and the log's verifier
// keys in, a verdict out; no network, no clock.
//
// Three kinds of evidence exist:
//
//   - "same-size": both checkpoints have the same size and different
//     roots. Conclusive.
//   - "inconsistent": the larger checkpoint's tree, through a consistency
//     proof that verifies against its signed root, has a root at the
//     smaller size that differs from the smaller checkpoint's signed root.
//     Conclusive: the proof binds the larger root to exactly one root at the
//     smaller size.
//   - "unproven": the sizes differ and the consistency proof that was
//     obtained (possibly none) does not verify between the two signed
//     roots. The log failed to prove it is append-only; that is a protocol
//     violation, but not by itself proof of a fork, because a correct proof
//     might still exist.
package splitview

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/internal/jsonx"
)

// Format is the value of the "format" member of every evidence file.
const Format = "ztlog/split-view/v1"

// The kinds of evidence.
const (
	SameSize     = "same-size"
	Inconsistent = "inconsistent"
	Unproven     = "unproven"
)

// MaxSize bounds an evidence file (two checkpoints with many signatures and
// a proof of at most 64 hashes fit easily).
const MaxSize = 1 << 20

// Evidence is a split-view evidence file.
type Evidence struct {
	// Format is always Format.
	Format string `json:"format"`
	// Kind is SameSize, Inconsistent or Unproven.
	Kind string `json:"kind"`
	// Origin is the log's origin line.
	Origin string `json:"origin"`
	// LogKeys are the verifier keys (signed-note vkeys) the reporter used
	// to verify both checkpoints. A verifier of the evidence should use the
	// log keys it trusts instead; these are what the reporter trusted.
	LogKeys []string `json:"log_keys"`
	// Checkpoints are the two signed notes, verbatim, smaller size first.
	Checkpoints [2]string `json:"checkpoints"`
	// Proof is the consistency proof attempt from the smaller to the larger
	// checkpoint. Absent for SameSize.
	Proof *ProofAttempt `json:"proof,omitempty"`
	// Observed says where and when the reporter got each checkpoint
	// (informational; not authenticated).
	Observed [2]Observation `json:"observed"`
	// Reporter names who produced the file (e.g. the witness's name).
	Reporter string `json:"reporter"`
	// Time is when the file was produced (RFC 3339, UTC).
	Time string `json:"time"`
}

// ProofAttempt is the consistency proof the reporter obtained between the
// two checkpoints, and what came of it.
type ProofAttempt struct {
	// OldSize and NewSize are the two checkpoints' sizes.
	OldSize uint64 `json:"old_size"`
	NewSize uint64 `json:"new_size"`
	// Hashes is the RFC 6962 consistency proof, standard base64, as
	// obtained (empty when none could be obtained).
	Hashes []string `json:"hashes"`
	// ImpliedRoot, for Inconsistent evidence, is the root at OldSize of the
	// tree whose root at NewSize is the larger checkpoint's (standard
	// base64). Hashes proves it consistent with that checkpoint.
	ImpliedRoot string `json:"implied_root,omitempty"`
	// Source says where the proof came from.
	Source string `json:"source"`
	// Error is why the proof does not show the two checkpoints consistent.
	Error string `json:"error"`
}

// Observation records where and when a checkpoint was seen.
type Observation struct {
	Source string `json:"source"`
	Time   string `json:"time"`
}

// Verdict is what Verify established.
type Verdict struct {
	// Kind is the evidence kind, re-derived from the checkpoints and proof.
	Kind string
	// Conclusive is true for SameSize and Inconsistent: the log signed two
	// checkpoints that cannot both be true.
	Conclusive bool
	// Origin, Sizes and Roots describe the two checkpoints (smaller first).
	Origin string
	Sizes  [2]uint64
	Roots  [2][]byte
	// ImpliedRoot is, for Inconsistent, the larger tree's root at Sizes[0].
	ImpliedRoot []byte
	// KeysFromFile is true when the checkpoints were verified with the
	// keys in the file because the caller gave none.
	KeysFromFile bool
	// Summary is one sentence for a report.
	Summary string
}

// ErrInvalid is wrapped by every error that means the file is not valid
// evidence (malformed, a signature that does not verify, checkpoints that
// are in fact consistent, a proof that does not show what it claims).
var ErrInvalid = errors.New("split-view evidence: invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// IsEvidence reports whether raw looks like a split-view evidence file (a
// JSON object whose "format" is Format), so that a tool handed an unknown
// file can route it here.
func IsEvidence(raw []byte) bool {
	var probe struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Format == Format
}

// Parse reads an evidence file, checking its structure (not its
// signatures or proof: see Verify).
func Parse(raw []byte) (*Evidence, error) {
	if len(raw) > MaxSize {
		return nil, invalid("file is %d bytes, more than %d", len(raw), MaxSize)
	}
	var e Evidence
	if err := jsonx.DecodeStrict(raw, &e); err != nil {
		return nil, invalid("not a split-view evidence JSON object: %v", err)
	}
	if e.Format != Format {
		return nil, invalid("format is %q, want %q", e.Format, Format)
	}
	switch e.Kind {
	case SameSize:
		if e.Proof != nil {
			return nil, invalid("same-size evidence carries no proof")
		}
	case Inconsistent, Unproven:
		if e.Proof == nil {
			return nil, invalid("%s evidence needs the proof attempt", e.Kind)
		}
		if len(e.Proof.Hashes) > 64 {
			return nil, invalid("proof has %d hashes; no consistency proof has more than 64", len(e.Proof.Hashes))
		}
		if (e.Kind == Inconsistent) != (e.Proof.ImpliedRoot != "") {
			return nil, invalid("implied_root is required for inconsistent evidence and only there")
		}
	default:
		return nil, invalid("kind %q is not %s, %s or %s", e.Kind, SameSize, Inconsistent, Unproven)
	}
	if e.Origin == "" {
		return nil, invalid("origin is empty")
	}
	if len(e.LogKeys) == 0 {
		return nil, invalid("log_keys is empty")
	}
	for i, c := range e.Checkpoints {
		if c == "" {
			return nil, invalid("checkpoints[%d] is empty", i)
		}
	}
	if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
		return nil, invalid("time %q is not RFC 3339", e.Time)
	}
	return &e, nil
}

// Marshal writes e as indented JSON with a final newline.
func (e *Evidence) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// VerifierKeys parses signed-note verifier keys (Ed25519 log keys).
func VerifierKeys(vkeys []string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("log key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

type checkpoint struct {
	size uint64
	root []byte
}

func openCheckpoint(origin string, raw []byte, logKeys note.Verifiers, which string) (*checkpoint, error) {
	n, err := note.Open(raw, logKeys)
	if err != nil {
		return nil, invalid("%s checkpoint is not validly signed by the log: %v", which, err)
	}
	var cp flog.Checkpoint
	if rest, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, invalid("%s checkpoint: %v", which, err)
	} else {
		_ = rest
	}
	if cp.Origin != origin {
		return nil, invalid("%s checkpoint is for origin %q, the evidence for %q", which, cp.Origin, origin)
	}
	if len(cp.Hash) != rfc6962.DefaultHasher.Size() {
		return nil, invalid("%s checkpoint root is %d bytes, want %d", which, len(cp.Hash), rfc6962.DefaultHasher.Size())
	}
	return &checkpoint{size: cp.Size, root: cp.Hash}, nil
}

// Verify checks an evidence file. logKeys are the log's verifier keys the
// caller trusts; when nil, the file's own log_keys are used and the verdict
// says so (KeysFromFile), since then the file proves only that whoever
// holds those keys signed two views.
//
// It re-derives everything: both signatures, the origins, the ordering,
// and the kind from the checkpoints and the proof. A file whose checkpoints
// turn out to be consistent, or whose proof does not show what its kind
// claims, is ErrInvalid.
func Verify(raw []byte, logKeys note.Verifiers) (*Verdict, error) {
	e, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	v := &Verdict{Origin: e.Origin}
	if logKeys == nil {
		logKeys, err = VerifierKeys(e.LogKeys)
		if err != nil {
			return nil, invalid("%v", err)
		}
		v.KeysFromFile = true
	}
	a, err := openCheckpoint(e.Origin, []byte(e.Checkpoints[0]), logKeys, "first")
	if err != nil {
		return nil, err
	}
	b, err := openCheckpoint(e.Origin, []byte(e.Checkpoints[1]), logKeys, "second")
	if err != nil {
		return nil, err
	}
	if a.size > b.size {
		return nil, invalid("checkpoints are not in order: sizes %d then %d", a.size, b.size)
	}
	v.Sizes = [2]uint64{a.size, b.size}
	v.Roots = [2][]byte{a.root, b.root}
	if a.size == b.size {
		if bytes.Equal(a.root, b.root) {
			return nil, invalid("both checkpoints are the same tree (size %d, same root); that is not a split view", a.size)
		}
		if e.Kind != SameSize {
			return nil, invalid("kind is %q, but the checkpoints have the same size", e.Kind)
		}
		v.Kind, v.Conclusive = SameSize, true
		v.Summary = fmt.Sprintf("the log %s signed two different trees of size %d", e.Origin, a.size)
		return v, nil
	}
	if a.size == 0 {
		return nil, invalid("a size-0 checkpoint is consistent with every tree; that is not a split view")
	}
	p := e.Proof
	if e.Kind == SameSize {
		return nil, invalid("kind is %q, but the sizes differ (%d, %d)", SameSize, a.size, b.size)
	}
	if p.OldSize != a.size || p.NewSize != b.size {
		return nil, invalid("proof is from %d to %d, the checkpoints are of sizes %d and %d", p.OldSize, p.NewSize, a.size, b.size)
	}
	hashes := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i], err = base64.StdEncoding.Strict().DecodeString(h)
		if err != nil || len(hashes[i]) != rfc6962.DefaultHasher.Size() {
			return nil, invalid("proof hash %d is not the standard base64 of a 32-byte hash", i)
		}
	}
	if proof.VerifyConsistency(rfc6962.DefaultHasher, a.size, b.size, hashes, a.root, b.root) == nil {
		return nil, invalid("the proof shows the checkpoints are consistent (size %d is a prefix of size %d); that is not a split view", a.size, b.size)
	}
	switch e.Kind {
	case Inconsistent:
		implied, err := base64.StdEncoding.Strict().DecodeString(p.ImpliedRoot)
		if err != nil || len(implied) != rfc6962.DefaultHasher.Size() {
			return nil, invalid("implied_root is not the standard base64 of a 32-byte hash")
		}
		if bytes.Equal(implied, a.root) {
			return nil, invalid("implied_root equals the first checkpoint's root")
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, a.size, b.size, hashes, implied, b.root); err != nil {
			return nil, invalid("the proof does not show that the tree of size %d has root implied_root at size %d: %v", b.size, a.size, err)
		}
		v.Kind, v.Conclusive, v.ImpliedRoot = Inconsistent, true, implied
		v.Summary = fmt.Sprintf("the log %s signed a tree of size %d whose prefix of size %d is not the tree it signed at size %d", e.Origin, b.size, a.size, a.size)
	case Unproven:
		v.Kind = Unproven
		v.Summary = fmt.Sprintf("the log %s did not prove that its tree of size %d extends its tree of size %d (not conclusive alone: a correct proof may still exist)", e.Origin, b.size, a.size)
	}
	return v, nil
}

// Build makes evidence from two checkpoints of one origin, both signed by
// logKeys (given as vkeys), and the consistency proof attempt between them
// (ignored when the sizes are equal). It orders the checkpoints, decides
// the kind — Inconsistent when the proof verifies against the larger root
// with a different root at the smaller size (ImpliedRoot), else Unproven —
// and verifies the result before returning it, so it never returns evidence
// that does not verify. now is the report time; reporter names the
// reporter.
func Build(logKeys []string, cps [2][]byte, obs [2]Observation, attempt *ProofAttempt, reporter string, now time.Time) (*Evidence, []byte, error) {
	vs, err := VerifierKeys(logKeys)
	if err != nil {
		return nil, nil, err
	}
	n, err := note.Open(cps[0], vs)
	if err != nil {
		return nil, nil, fmt.Errorf("first checkpoint: %w", err)
	}
	origin, _, _ := strings.Cut(n.Text, "\n")
	a, err := openCheckpoint(origin, cps[0], vs, "first")
	if err != nil {
		return nil, nil, err
	}
	b, err := openCheckpoint(origin, cps[1], vs, "second")
	if err != nil {
		return nil, nil, err
	}
	if a.size > b.size {
		a, b = b, a
		cps[0], cps[1] = cps[1], cps[0]
		obs[0], obs[1] = obs[1], obs[0]
	}
	e := &Evidence{
		Format:      Format,
		Origin:      origin,
		LogKeys:     logKeys,
		Checkpoints: [2]string{string(cps[0]), string(cps[1])},
		Observed:    obs,
		Reporter:    reporter,
		Time:        now.UTC().Format(time.RFC3339),
	}
	if a.size == b.size {
		e.Kind = SameSize
	} else {
		if attempt == nil {
			attempt = &ProofAttempt{Error: "no consistency proof was obtained"}
		}
		p := *attempt
		p.OldSize, p.NewSize = a.size, b.size
		if p.Hashes == nil {
			p.Hashes = []string{}
		}
		e.Kind, e.Proof = Unproven, &p
		if p.ImpliedRoot == "" {
			if implied := ImpliedRoot(a.size, b.size, decodeAll(p.Hashes), a.root, b.root); implied != nil {
				p.ImpliedRoot = base64.StdEncoding.EncodeToString(implied)
			}
		}
		if p.ImpliedRoot != "" {
			e.Kind = Inconsistent
		}
	}
	raw, err := e.Marshal()
	if err != nil {
		return nil, nil, err
	}
	if _, err := Verify(raw, vs); err != nil {
		return nil, nil, err
	}
	return e, raw, nil
}

// ImpliedRoot returns the root at size oldSize that a consistency proof to
// (newSize, newRoot) commits to, when the proof verifies against newRoot
// and that root differs from oldRoot; otherwise nil. It uses only the
// proof: when oldSize is a power of two the proof does not carry the old
// root, and the caller must obtain it from the log's tiles.
func ImpliedRoot(oldSize, newSize uint64, hashes [][]byte, oldRoot, newRoot []byte) []byte {
	err := proof.VerifyConsistency(rfc6962.DefaultHasher, oldSize, newSize, hashes, oldRoot, newRoot)
	var mismatch proof.RootMismatchError
	if err == nil || !errors.As(err, &mismatch) || !bytes.Equal(mismatch.ExpectedRoot, oldRoot) {
		return nil
	}
	implied := mismatch.CalculatedRoot
	if proof.VerifyConsistency(rfc6962.DefaultHasher, oldSize, newSize, hashes, implied, newRoot) != nil {
		return nil
	}
	return implied
}

func decodeAll(b64 []string) [][]byte {
	out := make([][]byte, 0, len(b64))
	for _, s := range b64 {
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil
		}
		out = append(out, h)
	}
	return out
}
