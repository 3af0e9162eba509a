// Package audit audits a whole evidence log from its C2SP tlog-tiles:
// it verifies the checkpoint against a trust policy, streams every entry
// bundle, recomputes the Merkle tree and checks that it has the
// checkpoint's root and that every hash tile the log serves equals the
// recomputed one, parses every entry as a contract entry, runs the
// pluggable entry signature checks, and checks completeness:
//
//   - every result links to an earlier allow decision with the same action
//     digest, leaf hash and broker, and is not older than it;
//   - no allow has a second result;
//   - no allow names an agent after its revocation (until it is registered
//     again); a deny for a revoked agent is the expected outcome;
//   - every allow older than the result window has a result (reported as a
//     warning, not a failure).
//
// Memory is bounded whatever the log's size: the tree costs a compact
// range and one tile per level; completeness costs the allows open within
// the window (at most Options.MaxOpen), one bit per allow that got a
// result (128 KiB per million entries at most) and the revoked agents.
//
// The package reads the log through Source and does nothing else with the
// outside world: tessera's client.HTTPFetcher and client.FileFetcher
// satisfy Source for a log served over HTTP or a POSIX log directory.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// Source reads a tlog-tiles log. A resource that does not exist is an
// error wrapping os.ErrNotExist. A partial tile or bundle may be answered
// with the full one.
type Source interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// EntryVerifier checks the signatures an entry carries (receipts,
// attestations, broker statements). VerifyEntry is called from several
// goroutines at once, for every entry, in no particular order.
type EntryVerifier interface {
	// Name names the check in reports: "signature.<Name>".
	Name() string
	// VerifyEntry returns nil when every signature it checks verifies or
	// the entry carries none it knows, and otherwise says what failed.
	VerifyEntry(index uint64, leaf []byte, e entry.Entry) error
	// Applies reports whether the entry carries a signature it checks (for
	// the count of entries checked).
	Applies(e entry.Entry) bool
}

// Unverifiable is implemented by an EntryVerifier that can tell when an
// entry carries a signature it cannot check (e.g. a statement the entry
// keeps only the digest of): the audit reports each such entry as a warning
// of the check, so "checked" never silently means "some of them".
type Unverifiable interface {
	Unverifiable(e entry.Entry) (why string, ok bool)
}

// Defaults of Options.
const (
	DefaultWindow      = time.Hour
	DefaultMaxOpen     = 1 << 18
	DefaultMaxLate     = 1 << 16
	DefaultPrefetch    = 16
	DefaultMaxExamples = 10
)

// Options adjust an audit. The zero value audits everything with the
// defaults.
type Options struct {
	// Window: an allow older than this without a result is reported.
	// Default 1 hour.
	Window time.Duration
	// MaxOpen bounds the allows tracked while awaiting a result (about
	// 200 bytes each). Default 262144.
	MaxOpen int
	// MaxLate bounds the results for allows no longer tracked whose link
	// is checked after the pass. Default 65536.
	MaxLate int
	// MerkleOnly replays the tree and checks tiles without reading entries
	// (no parsing, signatures or completeness).
	MerkleOnly bool
	// Verifiers check entry signatures.
	Verifiers []EntryVerifier
	// Workers parse and verify entries in parallel. Default GOMAXPROCS.
	Workers int
	// Prefetch is how many entry bundles are read ahead. Default 16.
	Prefetch int
	// Now is the auditor's clock: at the end, allows older than Now-Window
	// without a result are reported. Zero: the log's latest entry time.
	Now time.Time
	// VerifyOptions for the checkpoint (its Now is taken from Now).
	MaxSkew time.Duration
	// MaxExamples is how many findings each check keeps. Default 10.
	MaxExamples int
	// Progress, when set, is called after each bundle with the entries
	// done and the total.
	Progress func(done, total uint64)
	// OnFinding, when set, receives every finding as it is made.
	OnFinding func(Finding)
	// HistoryIndex, when set, is the index checkpoint the log serves
	// (GET /v1/history/checkpoint, verifier/history): Run recomputes the
	// history index from the entries and checks it (history.index).
	HistoryIndex []byte
}

func (o Options) withDefaults() Options {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = DefaultMaxOpen
	}
	if o.MaxLate <= 0 {
		o.MaxLate = DefaultMaxLate
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Prefetch <= 0 {
		o.Prefetch = DefaultPrefetch
	}
	if o.MaxExamples <= 0 {
		o.MaxExamples = DefaultMaxExamples
	}
	return o
}

// Auditor audits a log incrementally: Advance to a checkpoint, then to a
// later one, carrying the tree and completeness state along (the monitor
// does this). Run audits a log once.
type Auditor struct {
	opts   Options
	f      *findings
	tree   *tree
	comp   *completeness
	origin string
	cp     *trustpolicy.Checkpoint
	// curTile0 is the level-0 tile read with the bundle being hashed.
	curTile0 []byte
	curErr   error
	src      Source
	ctx      context.Context
	entries  uint64
	hist     *historyCheck
}

// NewAuditor returns an auditor at tree size 0.
func NewAuditor(opts Options) *Auditor {
	opts = opts.withDefaults()
	var names []string
	for _, v := range opts.Verifiers {
		names = append(names, v.Name())
	}
	a := &Auditor{opts: opts, f: newFindings(opts.MaxExamples, names)}
	a.f.sink = opts.OnFinding
	a.tree = newTree(a.fullTile)
	a.comp = newCompleteness(a.f, opts.Window, opts.MaxOpen, opts.MaxLate)
	return a
}

// ErrUnusable wraps errors that stop an audit before a verdict: the log
// could not be read (network, permissions), or the context ended.
var ErrUnusable = errors.New("audit could not complete")

// Run verifies the log's checkpoint against the policy and audits the
// whole log up to it. The error is non-nil only when no verdict could be
// reached (ErrUnusable); a log that fails a check gives a Report with
// Valid false.
func Run(ctx context.Context, src Source, pol *trustpolicy.Policy, opts Options) (*Report, error) {
	a := NewAuditor(opts)
	start := time.Now()
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: read checkpoint: %w", ErrUnusable, err)
	}
	cp, err := a.VerifyCheckpoint(raw, pol)
	if err == nil && opts.HistoryIndex != nil && !opts.MerkleOnly {
		a.setHistory(opts.HistoryIndex, cp)
	}
	if err == nil {
		err = a.Advance(ctx, src, cp)
	}
	if err == nil {
		a.finishHistory()
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if err == nil {
		a.Finish()
	}
	return a.Report(time.Since(start)), nil
}

// errStop ends an audit whose verdict is already known (fail).
var errStop = errors.New("audit stopped at a failed check")

// VerifyCheckpoint verifies a checkpoint against the policy and records
// the result in the checkpoint check. On failure the error wraps errStop.
func (a *Auditor) VerifyCheckpoint(raw []byte, pol *trustpolicy.Policy) (*trustpolicy.Checkpoint, error) {
	a.f.checked(CheckCheckpoint, 1)
	cp, err := pol.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{Now: a.opts.Now, MaxSkew: a.opts.MaxSkew})
	if err != nil {
		a.f.add(CheckCheckpoint, Fail, nil, err.Error())
		return nil, fmt.Errorf("%w: %w", errStop, err)
	}
	return cp, nil
}

// Size is the tree size audited so far.
func (a *Auditor) Size() uint64 { return a.tree.size() }

// Checkpoint is the last checkpoint Advance reached.
func (a *Auditor) Checkpoint() *trustpolicy.Checkpoint { return a.cp }

// Failed reports whether any check has failed.
func (a *Auditor) Failed() bool { return a.f.failed() }

// Advance audits the entries from the current size up to cp.Size (cp must
// already be verified) and checks the recomputed root against cp. A failed
// check that makes the rest meaningless (a missing or malformed bundle, a
// root mismatch) returns an error wrapping errStop; IsFailure reports it.
func (a *Auditor) Advance(ctx context.Context, src Source, cp *trustpolicy.Checkpoint) error {
	if a.origin != "" && cp.Origin != a.origin {
		return fmt.Errorf("%w: checkpoint is for %q, this audit is of %q", ErrUnusable, cp.Origin, a.origin)
	}
	from := a.tree.size()
	if cp.Size < from {
		a.f.add(CheckRoot, Fail, nil, fmt.Sprintf("checkpoint size %d is smaller than the %d entries already audited: the log went backwards", cp.Size, from))
		return errStop
	}
	a.origin, a.src, a.ctx = cp.Origin, src, ctx
	if err := a.stream(ctx, src, from, cp.Size); err != nil {
		return err
	}
	if err := a.tree.partial(a.partialTile); err != nil {
		return err
	}
	a.f.checked(CheckRoot, 1)
	if root := a.tree.root(); string(root) != string(cp.Hash) {
		a.f.add(CheckRoot, Fail, nil, fmt.Sprintf("the %d entries hash to root %s, the checkpoint says %s", cp.Size, b64(root), b64(cp.Hash)))
		return errStop
	}
	a.cp = cp
	a.checkLate(ctx, src, cp)
	return nil
}

// IsFailure reports whether err from Advance means a check failed (the
// report says which) rather than that the log could not be read.
func IsFailure(err error) bool { return errors.Is(err, errStop) }

// Finish runs the end-of-audit checks: allows older than the window
// without a result (against Options.Now or the log's latest time).
func (a *Auditor) Finish() { a.finishAt(a.opts.Now) }

func (a *Auditor) finishAt(now time.Time) {
	a.comp.finish(now)
}

// ExpireAt reports allows whose window has passed by now (the monitor
// calls it at each step).
func (a *Auditor) ExpireAt(now time.Time) { a.comp.expire(now.UnixNano(), ^uint64(0)) }

// Report summarizes the audit so far.
func (a *Auditor) Report(d time.Duration) *Report {
	a.f.mu.Lock()
	defer a.f.mu.Unlock()
	r := &Report{Origin: a.origin, Entries: a.entries, Kinds: map[string]uint64{}, Duration: d, Open: uint64(len(a.comp.open))}
	if a.cp != nil {
		r.TreeSize, r.RootHash = a.cp.Size, a.cp.Hash
		for _, c := range a.cp.Cosignatures {
			r.Cosigners = append(r.Cosigners, c.Witness.Name)
		}
	}
	for k, v := range a.comp.kinds {
		r.Kinds[k] = v
	}
	for _, id := range a.f.order {
		c := *a.f.checks[id]
		c.Examples = append([]Finding(nil), c.Examples...)
		r.Checks = append(r.Checks, &c)
	}
	r.First = a.f.first
	r.Valid = r.First == nil
	r.EntrySignatures = "NOT checked: no entry signature checks were given"
	if a.opts.MerkleOnly {
		r.EntrySignatures = "NOT checked: Merkle-only replay"
	} else if len(a.opts.Verifiers) > 0 {
		var names []string
		for _, v := range a.opts.Verifiers {
			names = append(names, "signature."+v.Name())
		}
		r.EntrySignatures = "checked (" + strings.Join(names, ", ") + ")"
	}
	if d > 0 {
		r.EntriesPerSec = float64(a.entries) / d.Seconds()
	}
	return r
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// fullTile compares a completed tile with the log's.
func (a *Auditor) fullTile(level, index uint64, hashes []byte) error {
	var t []byte
	var err error
	if level == 0 {
		t, err = a.curTile0, a.curErr
	} else {
		t, err = a.src.ReadTile(a.ctx, level, index, 0)
	}
	return a.compareTile(level, index, 0, t, err, hashes)
}

func (a *Auditor) partialTile(level, index uint64, hashes []byte) error {
	w := uint8(len(hashes) / 32)
	t, err := a.src.ReadTile(a.ctx, level, index, w)
	return a.compareTile(level, index, w, t, err, hashes)
}

func (a *Auditor) compareTile(level, index uint64, w uint8, t []byte, err error, hashes []byte) error {
	path := layout.TilePath(level, index, w)
	a.f.checked(CheckTiles, 1)
	if errors.Is(err, os.ErrNotExist) {
		a.f.add(CheckTiles, Fail, nil, fmt.Sprintf("tile %s is missing", path))
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: read tile %s: %w", ErrUnusable, path, err)
	}
	if ok, why := sameHashes(t, hashes); !ok {
		first := index * layout.TileWidth << (level * layout.TileHeight)
		a.f.add(CheckTiles, Fail, idx(first), fmt.Sprintf("tile %s differs from the tree recomputed from the entries: %s", path, why))
	}
	return nil
}

// bundleJob is one entry bundle being read ahead, with its level-0 tile.
// The reading goroutine also splits the bundle and hashes its leaves, so
// that leaf hashing runs on every core.
type bundleJob struct {
	n       uint64 // bundle index
	first   uint64 // first wanted entry index
	end     uint64 // one past the last wanted entry index
	p       uint8  // partial width asked for (0: full)
	err     error  // reading the bundle
	bad     string // why the bundle is malformed, if it is
	leaves  [][]byte
	hashes  []byte // 32 bytes per wanted leaf
	tile    []byte
	tileErr error
	done    chan struct{}
}

// load reads, splits and hashes the bundle.
func (j *bundleJob) load(ctx context.Context, src Source) {
	var data []byte
	data, j.err = src.ReadEntryBundle(ctx, j.n, j.p)
	j.tile, j.tileErr = src.ReadTile(ctx, 0, j.n, j.p)
	if j.err != nil {
		return
	}
	var b api.EntryBundle
	if err := b.UnmarshalText(data); err != nil {
		j.bad = err.Error()
		return
	}
	lo, hi := j.first%layout.EntryBundleWidth, (j.end-1)%layout.EntryBundleWidth+1
	switch {
	case len(b.Entries) > layout.EntryBundleWidth:
		j.bad = fmt.Sprintf("%d entries, more than %d", len(b.Entries), layout.EntryBundleWidth)
		return
	case uint64(len(b.Entries)) < hi:
		j.bad = fmt.Sprintf("%d entries, the checkpoint needs %d", len(b.Entries), hi)
		return
	}
	j.leaves = b.Entries[lo:hi]
	j.hashes = make([]byte, 32*len(j.leaves))
	h := sha256.New()
	for k, leaf := range j.leaves {
		h.Reset()
		h.Write(leafPrefix)
		h.Write(leaf)
		h.Sum(j.hashes[k*32 : k*32 : k*32+32])
	}
}

var leafPrefix = []byte{rfc6962.RFC6962LeafHashPrefix}

// parsed is one bundle's entries, parsed by a worker.
type parsed struct {
	first   uint64
	leaves  [][]byte
	hashes  []byte
	entries []entry.Entry
	done    chan struct{}
}

func (a *Auditor) stream(ctx context.Context, src Source, from, to uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *bundleJob, a.opts.Prefetch)
	go func() {
		defer close(jobs)
		sem := make(chan struct{}, a.opts.Prefetch)
		for ri := range layout.Range(from, to-from, to) {
			j := &bundleJob{n: ri.Index, first: ri.Index*layout.EntryBundleWidth + uint64(ri.First), p: ri.Partial, done: make(chan struct{})}
			j.end = j.first + uint64(ri.N)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem; close(j.done) }()
				j.load(ctx, src)
			}()
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()

	var work chan *parsed
	var ordered chan *parsed
	compDone := make(chan struct{})
	if !a.opts.MerkleOnly {
		work = make(chan *parsed, a.opts.Workers)
		ordered = make(chan *parsed, 2*a.opts.Workers)
		for range a.opts.Workers {
			go func() {
				for p := range work {
					a.parse(p)
					close(p.done)
				}
			}()
		}
		go func() {
			defer close(compDone)
			for p := range ordered {
				<-p.done
				for k, e := range p.entries {
					if e != nil {
						a.comp.entry(p.first+uint64(k), p.hashes[k*32:k*32+32], e)
					}
					if a.hist != nil {
						a.hist.observe(p.hashes[k*32:k*32+32], e)
					}
				}
			}
		}()
	} else {
		close(compDone)
	}
	finish := func() {
		if work != nil {
			close(work)
			close(ordered)
		}
		<-compDone
	}

	for j := range jobs {
		<-j.done
		path := layout.EntriesPath(j.n, j.p)
		a.f.checked(CheckBundles, 1)
		switch {
		case errors.Is(j.err, os.ErrNotExist):
			a.f.add(CheckBundles, Fail, idx(j.first), fmt.Sprintf("entry bundle %s is missing", path))
			finish()
			return errStop
		case j.err != nil:
			finish()
			return fmt.Errorf("%w: read entry bundle %s: %w", ErrUnusable, path, j.err)
		case j.bad != "":
			a.f.add(CheckBundles, Fail, idx(j.first), fmt.Sprintf("entry bundle %s is malformed: %s", path, j.bad))
			finish()
			return errStop
		}
		a.curTile0, a.curErr = j.tile, j.tileErr
		leaves, hashes := j.leaves, j.hashes
		for k := range leaves {
			if err := a.tree.append(hashes[k*32 : k*32+32 : k*32+32]); err != nil {
				finish()
				return err
			}
		}
		a.entries += uint64(len(leaves))
		if work != nil {
			p := &parsed{first: j.first, leaves: leaves, hashes: hashes, done: make(chan struct{})}
			select {
			case work <- p:
			case <-ctx.Done():
				finish()
				return fmt.Errorf("%w: %w", ErrUnusable, ctx.Err())
			}
			ordered <- p
		}
		if a.opts.Progress != nil {
			a.opts.Progress(j.end, to)
		}
	}
	finish()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnusable, err)
	}
	if a.tree.size() != to {
		return fmt.Errorf("%w: streamed to size %d, want %d", ErrUnusable, a.tree.size(), to)
	}
	return nil
}

// parse parses and verifies one bundle's entries (in a worker).
func (a *Auditor) parse(p *parsed) {
	p.entries = make([]entry.Entry, len(p.leaves))
	a.f.checked(CheckParse, uint64(len(p.leaves)))
	for k, leaf := range p.leaves {
		i := p.first + uint64(k)
		e, err := entry.Parse(leaf)
		if err != nil {
			a.f.add(CheckParse, Fail, idx(i), fmt.Sprintf("entry %d is not a valid contract entry: %v", i, err))
			continue
		}
		p.entries[k] = e
		for _, v := range a.opts.Verifiers {
			id := "signature." + v.Name()
			if !v.Applies(e) {
				if u, ok := v.(Unverifiable); ok {
					if why, yes := u.Unverifiable(e); yes {
						a.f.add(id, Warn, idx(i), fmt.Sprintf("entry %d: not verifiable: %s", i, why))
					}
				}
				continue
			}
			a.f.checked(id, 1)
			if err := v.VerifyEntry(i, leaf, e); err != nil {
				a.f.add(id, Fail, idx(i), fmt.Sprintf("entry %d: %v", i, err))
			}
		}
	}
}

// checkLate links the results whose allow had left the open set, against
// the now verified tree: each allow is read again and proven included.
func (a *Auditor) checkLate(ctx context.Context, src Source, cp *trustpolicy.Checkpoint) {
	late := a.comp.late
	a.comp.late = nil
	if len(late) == 0 {
		return
	}
	sort.Slice(late, func(i, j int) bool { return late[i].Decision < late[j].Decision })
	pb, err := client.NewProofBuilder(ctx, cp.Size, src.ReadTile)
	if err != nil {
		a.f.add(CheckCapacity, Fail, nil, fmt.Sprintf("cannot check %d late results: %v", len(late), err))
		return
	}
	var bundle api.EntryBundle
	bundleN := ^uint64(0)
	for _, l := range late {
		d := l.Decision
		if n := d / layout.EntryBundleWidth; n != bundleN {
			raw, err := src.ReadEntryBundle(ctx, n, layout.PartialTileSize(0, n, cp.Size))
			if err == nil {
				err = bundle.UnmarshalText(raw)
			}
			if err != nil {
				a.f.add(CheckResultLink, Fail, idx(l.Index), fmt.Sprintf("result at entry %d: cannot read its allow at entry %d again: %v", l.Index, d, err))
				bundleN = ^uint64(0)
				continue
			}
			bundleN = n
		}
		k := d % layout.EntryBundleWidth
		if k >= uint64(len(bundle.Entries)) {
			a.f.add(CheckResultLink, Fail, idx(l.Index), fmt.Sprintf("result at entry %d: its allow at entry %d is missing from the bundle read again", l.Index, d))
			continue
		}
		leaf := bundle.Entries[k]
		hash := rfc6962.DefaultHasher.HashLeaf(leaf)
		path, err := pb.InclusionProof(ctx, d)
		if err == nil {
			err = proof.Inclusion(cp, d, hash, path)
		}
		if err != nil {
			a.f.add(CheckResultLink, Fail, idx(l.Index), fmt.Sprintf("result at entry %d: its allow at entry %d, read again, is not proven in the tree: %v", l.Index, d, err))
			continue
		}
		e, err := entry.Parse(leaf)
		dec, ok := e.(*entry.Decision)
		if err != nil || !ok || dec.Effect != entry.Allow {
			a.f.add(CheckResultLink, Fail, idx(l.Index), fmt.Sprintf("result at entry %d: entry %d, read again, is not an allow decision", l.Index, d))
			continue
		}
		allow := openAllow{Time: entryTime(dec), Action: digestBytes(dec.ActionDigest), Broker: dec.Broker}
		copy(allow.Leaf[:], hash)
		a.comp.link(l.Index, d, l.Time, l.Leaf, l.Action, l.Broker, allow)
		if l.Time-allow.Time > int64(a.opts.Window) {
			a.f.add(CheckResultDue, Warn, idx(l.Index), fmt.Sprintf("result at entry %d for the allow at entry %d came %s after it, later than the %s window", l.Index, d, time.Duration(l.Time-allow.Time).Round(time.Second), a.opts.Window))
		}
	}
}
