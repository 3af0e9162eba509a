package daal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// The ledger file. Each line is one vdaal.Anchor in JSON (its format is
// verifier/daal's), written whole after every transition and fsynced
// before anything depends on it; the last line of an id is its current
// state, earlier lines are its history.
const (
	ledgerFile = vdaal.LedgerFile
	lockFile   = "anchors.lock"
)

// ErrLedger is wrapped by errors about a ledger file that cannot be read.
var ErrLedger = errors.New("daal: anchor ledger")

// ErrLedgerBusy: another process holds the ledger.
var ErrLedgerBusy = errors.New("daal: anchor ledger in use by another process")

// Ledger is the durable record of anchors in a directory. One process at a
// time may hold it (an exclusive lock on anchors.lock).
type Ledger struct {
	dir string
	// readOnly: a snapshot (OpenLedgerSnapshot); transitions are kept in
	// memory only.
	readOnly bool
	mu       sync.Mutex
	f        *os.File
	lock     *os.File
	byID     map[uint64]*vdaal.Anchor
	next     uint64
}

// OpenLedger opens (creating if needed) the ledger in dir. A last line cut
// short by a crash is dropped; any other unreadable line is an error, and
// nothing is written.
func OpenLedger(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s (stop the other `ztlog daal` first)", ErrLedgerBusy, dir)
	}
	path := filepath.Join(dir, ledgerFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		lock.Close()
		return nil, fmt.Errorf("%w: read %s: %w", ErrLedger, path, err)
	}
	anchors, complete, err := vdaal.ParseLedger(raw)
	if err != nil {
		f.Close()
		lock.Close()
		return nil, fmt.Errorf("%w: %s: %w; the file is left as it is for an operator to inspect", ErrLedger, path, err)
	}
	if complete < len(raw) {
		// A torn last line: the transition it recorded never completed.
		if err := f.Truncate(int64(complete)); err != nil {
			f.Close()
			lock.Close()
			return nil, fmt.Errorf("%w: drop torn line: %w", ErrLedger, err)
		}
	}
	if _, err := f.Seek(int64(complete), io.SeekStart); err != nil {
		f.Close()
		lock.Close()
		return nil, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	l := &Ledger{dir: dir, f: f, lock: lock, byID: map[uint64]*vdaal.Anchor{}, next: 1}
	for _, a := range anchors {
		l.byID[a.ID] = a
		l.next = max(l.next, a.ID+1)
	}
	return l, nil
}

// OpenLedgerOrSnapshot opens the ledger in dir as OpenLedger does or, when
// another process holds it (a running `ztlog daal anchor`), a snapshot of
// it (OpenLedgerSnapshot; ReadOnly says which): a reconciliation of the
// snapshot records nothing, and the holder records its own.
func OpenLedgerOrSnapshot(dir string) (*Ledger, error) {
	l, err := OpenLedger(dir)
	if errors.Is(err, ErrLedgerBusy) {
		return OpenLedgerSnapshot(dir)
	}
	return l, err
}

// OpenLedgerSnapshot reads the ledger in dir without taking it: for
// reconciling while `ztlog daal anchor` holds it. Transitions Put into a
// snapshot are not written.
func OpenLedgerSnapshot(dir string) (*Ledger, error) {
	path := filepath.Join(dir, ledgerFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	anchors, _, err := vdaal.ParseLedger(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrLedger, path, err)
	}
	l := &Ledger{dir: dir, readOnly: true, byID: map[uint64]*vdaal.Anchor{}, next: 1}
	for _, a := range anchors {
		l.byID[a.ID] = a
		l.next = max(l.next, a.ID+1)
	}
	return l, nil
}

// ReadOnly reports whether the ledger is a snapshot.
func (l *Ledger) ReadOnly() bool { return l.readOnly }

// Dir is the ledger's directory.
func (l *Ledger) Dir() string { return l.dir }

// Close releases the ledger.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readOnly {
		return nil
	}
	err := l.f.Close()
	return errors.Join(err, l.lock.Close())
}

// Anchors returns a copy of every anchor's current state, in id order.
func (l *Ledger) Anchors() []vdaal.Anchor {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]vdaal.Anchor, 0, len(l.byID))
	for _, a := range l.byID {
		out = append(out, a.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns a copy of one anchor.
func (l *Ledger) Get(id uint64) (vdaal.Anchor, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.byID[id]
	if !ok {
		return vdaal.Anchor{}, false
	}
	return a.Clone(), true
}

// Add records a new anchor (its ID is assigned) and returns it.
func (l *Ledger) Add(a vdaal.Anchor) (vdaal.Anchor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a.ID = l.next
	if err := l.write(&a); err != nil {
		return vdaal.Anchor{}, err
	}
	l.next++
	return a.Clone(), nil
}

// Put records a new state of an existing anchor; it is durable when Put
// returns.
func (l *Ledger) Put(a vdaal.Anchor) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.byID[a.ID]
	if !ok {
		return fmt.Errorf("%w: no anchor %d", ErrLedger, a.ID)
	}
	if !vdaal.ValidTransition(prev.State, a.State) {
		return fmt.Errorf("%w: anchor %d cannot go from %s to %s", ErrLedger, a.ID, prev.State, a.State)
	}
	return l.write(&a)
}

func (l *Ledger) write(a *vdaal.Anchor) error {
	b, err := a.MarshalJSONLine()
	if err != nil {
		return err
	}
	if _, err := vdaal.ParseAnchorLine(b[:len(b)-1]); err != nil {
		return fmt.Errorf("%w: refusing to record an invalid anchor: %w", ErrLedger, err)
	}
	if l.readOnly {
		c := a.Clone()
		l.byID[a.ID] = &c
		return nil
	}
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("%w: write: %w", ErrLedger, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("%w: sync: %w", ErrLedger, err)
	}
	c := a.Clone()
	l.byID[a.ID] = &c
	return nil
}
