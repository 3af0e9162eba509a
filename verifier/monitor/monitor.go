// Package monitor follows an evidence log: at each poll it reads the
// log's checkpoint, verifies it against the trust policy, proves it
// consistent with the last checkpoint it accepted, audits the new entries
// (package audit, incrementally) and saves its position, so that a
// restarted monitor continues where it stopped. Everything it finds is an
// Alert, handed to the caller (zt-audit monitor writes them as JSON lines
// and posts them to a webhook).
//
// State is a directory holding state.json, replaced atomically (write to
// a temporary file, fsync, rename, fsync the directory) after each
// accepted checkpoint. A checkpoint that fails any check is not accepted:
// the state stays at the last good one and the same problem is alerted
// once per distinct checkpoint.
package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/internal/fsx"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// Alert kinds, in addition to the audit's check IDs (tree.root,
// result.link, allow.result, ...), which are used as kinds for audit
// findings.
const (
	// KindInconsistent: the new checkpoint is not an extension of the last
	// accepted one (a fork, or the log went backwards).
	KindInconsistent = "checkpoint.inconsistent"
	// KindBadSignature: the checkpoint is malformed or its log signature
	// does not verify, or a policy witness's cosignature does not.
	KindBadSignature = "checkpoint.bad_signature"
	// KindUnknownLog: the checkpoint is not signed by a log in the policy.
	KindUnknownLog = "checkpoint.unknown_log"
	// KindQuorum: the cosignatures do not meet the policy's quorum.
	KindQuorum = "checkpoint.quorum"
	// KindUnknownKey: a signature line from a key the policy does not name.
	KindUnknownKey = "checkpoint.unknown_key"
	// KindUnreachable: the log could not be read (reported once until it
	// can be read again).
	KindUnreachable = "log.unreachable"
)

// Alert is one problem found.
type Alert struct {
	Time     time.Time      `json:"time"`
	Kind     string         `json:"kind"`
	Severity audit.Severity `json:"severity"`
	Origin   string         `json:"origin,omitempty"`
	// Size is the tree size of the checkpoint concerned, if any.
	Size *uint64 `json:"size,omitempty"`
	// Index is the log index of the entry concerned, if any.
	Index   *uint64 `json:"index,omitempty"`
	Message string  `json:"message"`
	// Checkpoint is the signed checkpoint concerned (evidence), if any.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Previous is the last accepted checkpoint, for inconsistencies.
	Previous string `json:"previous,omitempty"`
}

// Options configure a Monitor.
type Options struct {
	// Audit options for the entry checks (Window, Verifiers, MerkleOnly, ...).
	Audit audit.Options
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Alert receives every alert. Required.
	Alert func(Alert)
}

// Monitor follows one log.
type Monitor struct {
	dir  string
	pol  *trustpolicy.Policy
	opts Options

	last    []byte // last accepted checkpoint (signed note)
	lastCP  *trustpolicy.Checkpoint
	auditor *audit.Auditor
	saved   []byte // auditor state at last, to undo a failed step
	// refused is the digest of a checkpoint refused for itself (signature,
	// quorum, fork), which is not checked again while it is served.
	refused [32]byte
	// current is the digest of the checkpoint being checked, and seen the
	// alerts already made about it: a log served with bad data is checked
	// again at every poll but alerted once.
	current     [32]byte
	seen        map[string]bool
	unreachable bool
	// buffering holds alerts back while a step's verdict is pending.
	buffering bool
	buffer    []Alert
}

// savedState is state.json.
type savedState struct {
	V          int             `json:"v"`
	Checkpoint string          `json:"checkpoint"`
	Auditor    json.RawMessage `json:"auditor"`
}

const stateFile = "state.json"

// Open loads the monitor's state from dir (creating dir if needed).
func Open(dir string, pol *trustpolicy.Policy, opts Options) (*Monitor, error) {
	if opts.Alert == nil {
		return nil, errors.New("monitor: Options.Alert is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("monitor state: %w", err)
	}
	m := &Monitor{dir: dir, pol: pol, opts: opts}
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		m.auditor = audit.NewAuditor(m.auditOptions())
		return m, nil
	case err != nil:
		return nil, fmt.Errorf("monitor state: %w", err)
	}
	var s savedState
	if err := json.Unmarshal(raw, &s); err != nil || s.V != 1 {
		return nil, fmt.Errorf("monitor state %s is not a state this build reads (%v); move it away to start over", filepath.Join(dir, stateFile), err)
	}
	cp, err := pol.VerifyCheckpoint([]byte(s.Checkpoint), trustpolicy.VerifyOptions{})
	if err != nil && !errors.Is(err, trustpolicy.ErrQuorum) {
		return nil, fmt.Errorf("monitor state: the saved checkpoint does not verify against this policy (%w); use the policy the state was made with, or another state directory", err)
	}
	if m.auditor, err = audit.RestoreAuditor(m.auditOptions(), s.Auditor); err != nil {
		return nil, fmt.Errorf("monitor state: %w", err)
	}
	if m.auditor.Size() != cp.Size {
		return nil, fmt.Errorf("monitor state: audited %d entries but the saved checkpoint has %d", m.auditor.Size(), cp.Size)
	}
	m.last, m.lastCP, m.saved = []byte(s.Checkpoint), cp, s.Auditor
	return m, nil
}

func (m *Monitor) auditOptions() audit.Options {
	o := m.opts.Audit
	user := o.OnFinding
	o.OnFinding = func(f audit.Finding) {
		if user != nil {
			user(f)
		}
		m.alert(Alert{Kind: f.Check, Severity: f.Severity, Index: f.Index, Message: f.Message})
	}
	return o
}

// Checkpoint is the last accepted checkpoint (nil before the first).
func (m *Monitor) Checkpoint() *trustpolicy.Checkpoint { return m.lastCP }

func (m *Monitor) alert(a Alert) {
	if m.buffering {
		m.buffer = append(m.buffer, a)
		return
	}
	key := a.Kind + "\x00" + a.Message
	if m.seen[key] {
		return
	}
	if m.seen != nil {
		m.seen[key] = true
	}
	a.Time = m.opts.Now().UTC()
	if a.Origin == "" && m.lastCP != nil {
		a.Origin = m.lastCP.Origin
	}
	m.opts.Alert(a)
}

func size(n uint64) *uint64 { return &n }

// Poll reads the log's checkpoint once and, if it is new, checks and
// audits it. It returns an error only when the state cannot be saved;
// everything about the log is an alert.
func (m *Monitor) Poll(ctx context.Context, src audit.Source) error {
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		if !m.unreachable {
			m.alert(Alert{Kind: KindUnreachable, Severity: audit.Warn, Message: fmt.Sprintf("cannot read the log's checkpoint: %v", err)})
		}
		m.unreachable = true
		return nil
	}
	if string(raw) == string(m.last) {
		m.expire()
		return nil
	}
	digest := sha256.Sum256(raw)
	if digest == m.refused {
		return nil // the same bad checkpoint, already alerted
	}
	if digest != m.current {
		m.current, m.seen = digest, map[string]bool{}
	}
	m.unreachable = false
	refused, err := m.step(ctx, src, raw)
	if refused {
		m.refused = digest
	}
	m.expire()
	return err
}

// Unreachable reports whether the last Poll could not read the log (its
// checkpoint, or the tiles and bundles up to it): nothing new was
// verified, and a log.unreachable warning was alerted when it started.
func (m *Monitor) Unreachable() bool { return m.unreachable }

// expire reports allows whose window passed without a result.
func (m *Monitor) expire() {
	if m.lastCP != nil && !m.opts.Audit.MerkleOnly {
		m.auditor.ExpireAt(m.opts.Now())
	}
}

// step checks one new checkpoint. refused is true when the checkpoint
// itself is bad (signature, quorum, fork): it is not checked again.
func (m *Monitor) step(ctx context.Context, src audit.Source, raw []byte) (refused bool, err error) {
	cp, err := m.pol.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{Now: m.opts.Now(), MaxSkew: m.opts.Audit.MaxSkew})
	evidence := Alert{Checkpoint: string(raw)}
	if cp != nil {
		evidence.Origin, evidence.Size = cp.Origin, size(cp.Size)
		m.cosignatureAlerts(cp, evidence)
	}
	if err != nil {
		a := evidence
		a.Severity, a.Message = audit.Fail, err.Error()
		switch {
		case errors.Is(err, trustpolicy.ErrQuorum):
			a.Kind = KindQuorum
		case errors.Is(err, trustpolicy.ErrUnknownLog):
			a.Kind = KindUnknownLog
		default:
			a.Kind = KindBadSignature
		}
		m.alert(a)
		return true, nil
	}
	// Another log's checkpoint, validly signed by a log the policy names,
	// where the followed log was: the log was replaced, not unreachable.
	if prev := m.lastCP; prev != nil && cp.Origin != prev.Origin {
		a := evidence
		a.Kind, a.Severity, a.Previous = KindInconsistent, audit.Fail, string(m.last)
		a.Message = fmt.Sprintf("the log now serves a checkpoint of origin %q; the log followed is %q (last accepted size %d)", cp.Origin, prev.Origin, prev.Size)
		m.alert(a)
		return true, nil
	}
	// The new entries are replayed onto the audited tree: reaching the new
	// root proves the new checkpoint extends the last one. Findings wait
	// for the verdict, so that a fork is reported as a fork rather than
	// as the root mismatch it causes.
	m.buffer, m.buffering = nil, true
	err = m.auditor.Advance(ctx, src, cp)
	buffered := m.buffer
	m.buffer, m.buffering = nil, false
	if err != nil {
		// Undo the partial step: resume from the last accepted state.
		var rerr error
		if m.auditor, rerr = m.restore(); rerr != nil {
			return false, rerr
		}
		if !audit.IsFailure(err) {
			// The log could not be read to the end: try again next poll.
			if !m.unreachable {
				m.alert(Alert{Kind: KindUnreachable, Severity: audit.Warn, Origin: cp.Origin, Size: size(cp.Size), Message: err.Error()})
			}
			m.unreachable = true
			return false, nil
		}
		// The entries do not reach the new root. If the log's own tiles
		// cannot prove the new checkpoint consistent with the last one
		// either, the log has signed a view that is not an extension of
		// the one accepted: a fork (or a rollback).
		if prev := m.lastCP; prev != nil {
			if cerr := m.consistent(ctx, src, prev, cp); cerr != nil {
				a := evidence
				a.Kind, a.Severity, a.Previous = KindInconsistent, audit.Fail, string(m.last)
				a.Message = cerr.Error() + "; the entries served do not extend the audited tree either"
				m.alert(a)
				return true, nil
			}
		}
		for _, a := range buffered {
			m.alert(a)
		}
		return false, nil
	}
	for _, a := range buffered {
		m.alert(a)
	}
	state, err := m.auditor.MarshalState()
	if err != nil {
		return false, err
	}
	if err := m.save(raw, state); err != nil {
		return false, err
	}
	m.last, m.lastCP, m.saved = raw, cp, state
	return false, nil
}

func (m *Monitor) restore() (*audit.Auditor, error) {
	if m.saved == nil {
		return audit.NewAuditor(m.auditOptions()), nil
	}
	return audit.RestoreAuditor(m.auditOptions(), m.saved)
}

func (m *Monitor) cosignatureAlerts(cp *trustpolicy.Checkpoint, evidence Alert) {
	for _, r := range cp.Rejected {
		a := evidence
		a.Kind, a.Severity, a.Message = KindBadSignature, audit.Fail, fmt.Sprintf("witness %q: %s", r.Witness.Name, r.Reason)
		m.alert(a)
	}
	for _, u := range cp.Unknown {
		a := evidence
		a.Kind, a.Severity, a.Message = KindUnknownKey, audit.Warn, fmt.Sprintf("signature line from a key the policy does not name: %s (key ID %08x)", u.Name, u.Hash)
		m.alert(a)
	}
}

// consistent proves prev's tree is a prefix of cp's with a consistency
// proof built from the log's tiles.
func (m *Monitor) consistent(ctx context.Context, src audit.Source, prev, cp *trustpolicy.Checkpoint) error {
	if cp.Origin != prev.Origin {
		return fmt.Errorf("the log's origin changed from %q to %q", prev.Origin, cp.Origin)
	}
	if cp.Size < prev.Size {
		return fmt.Errorf("the log went backwards: checkpoint size %d after size %d", cp.Size, prev.Size)
	}
	var path [][]byte
	if cp.Size > prev.Size && prev.Size > 0 {
		pb, err := client.NewProofBuilder(ctx, cp.Size, src.ReadTile)
		if err == nil {
			path, err = pb.ConsistencyProof(ctx, prev.Size, cp.Size)
		}
		if err != nil {
			return fmt.Errorf("no consistency proof from size %d to %d can be built from the log's tiles: %w", prev.Size, cp.Size, err)
		}
	}
	return proof.Consistency(prev, cp, path)
}

// save replaces state.json atomically.
func (m *Monitor) save(checkpoint, auditor []byte) error {
	b, err := json.Marshal(savedState{V: 1, Checkpoint: string(checkpoint), Auditor: auditor})
	if err != nil {
		return err
	}
	if err := fsx.WriteAtomic(filepath.Join(m.dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("monitor state: %w", err)
	}
	return nil
}
