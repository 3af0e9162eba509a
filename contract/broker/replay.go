package broker

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zt-infra/ztlog/internal/fsx"
	"github.com/zt-infra/ztlog/internal/text"
)

// ErrReplayed: the receipt's one-time id was honoured before.
var ErrReplayed = errors.New("receipt already used")

// Replay remembers the one-time ids (jti) of the receipts a broker has
// honoured, in a file, so that a receipt is honoured at most once — across
// restarts, and across broker processes sharing the file (an exclusive
// flock on PATH.lock serializes every check-and-record and the compaction).
//
// The file is a sequence of lines "<base64url(jti)> <exp>\n" (exp in Unix
// seconds), appended and fsynced before Claim returns, so a crash after
// Claim never forgets a use. Ids are kept until their receipt expires plus
// the leeway; OpenReplay rewrites the file without the expired ones
// (atomically, by rename; other processes notice the new file and reread
// it).
type Replay struct {
	path   string
	leeway time.Duration
	mu     sync.Mutex
	lockF  *os.File
	f      *os.File // the ids file, O_APPEND
	ino    uint64   // its inode, to notice a compaction by another process
	off    int64    // bytes of it read into seen
	seen   map[string]int64
	// Group commit: claims write their line under the locks, then share
	// fsyncs. written counts lines written, synced those known durable.
	syncMu  sync.Mutex
	written atomic.Int64
	synced  atomic.Int64
}

// OpenReplay opens (creating) the replay file at path. leeway is how long
// past its expiry an id is kept (the clock skew brokers tolerate).
func OpenReplay(path string, leeway time.Duration, now time.Time) (*Replay, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay lock file: %w", err)
	}
	r := &Replay{path: path, leeway: leeway, lockF: lf, seen: map[string]int64{}}
	if err := r.lock(); err != nil {
		lf.Close()
		return nil, err
	}
	defer r.unlock()
	if err := r.compact(now); err != nil {
		lf.Close()
		return nil, err
	}
	if err := r.sync(); err != nil {
		lf.Close()
		return nil, err
	}
	return r, nil
}

func (r *Replay) lock() error {
	if err := syscall.Flock(int(r.lockF.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("replay file lock: %w", err)
	}
	return nil
}

func (r *Replay) unlock() { syscall.Flock(int(r.lockF.Fd()), syscall.LOCK_UN) }

// compact rewrites the file without expired ids. Under the lock.
func (r *Replay) compact(now time.Time) error {
	keep := map[string]int64{}
	if f, err := os.Open(r.path); err == nil {
		_, err := readIDs(f, keep)
		f.Close()
		if err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replay file: %w", err)
	}
	cut := now.Add(-r.leeway).Unix()
	var b strings.Builder
	for id, exp := range keep {
		if exp >= cut {
			fmt.Fprintf(&b, "%s %d\n", id, exp)
		}
	}
	if err := fsx.WriteAtomic(r.path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("replay file: %w", err)
	}
	return nil
}

// readIDs reads lines into seen; it returns the bytes consumed (whole
// lines only: a partial last line, from a crash mid-write, is ignored).
func readIDs(rd io.Reader, seen map[string]int64) (int64, error) {
	br := bufio.NewReader(rd)
	var n int64
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += int64(len(line))
		id, exp, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		e, perr := strconv.ParseInt(exp, 10, 64)
		if !ok || perr != nil || id == "" {
			return n, fmt.Errorf("replay file: malformed line %q", strings.TrimSpace(line))
		}
		seen[id] = e
	}
}

// sync brings seen up to date with the file: reopening it when another
// process replaced it, then reading what was appended. Under the lock.
func (r *Replay) sync() error {
	st, err := os.Stat(r.path)
	if err != nil {
		return fmt.Errorf("replay file: %w", err)
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	if r.f == nil || ino != r.ino {
		if r.f != nil {
			r.f.Close()
		}
		f, err := os.OpenFile(r.path, os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("replay file: %w", err)
		}
		r.f, r.ino, r.off, r.seen = f, ino, 0, map[string]int64{}
	}
	rd, err := os.Open(r.path)
	if err != nil {
		return err
	}
	defer rd.Close()
	if _, err := rd.Seek(r.off, io.SeekStart); err != nil {
		return err
	}
	n, err := readIDs(rd, r.seen)
	r.off += n
	return err
}

// Claim records the one-time id jti of a receipt expiring at exp, durably,
// and returns nil — or ErrReplayed if it was claimed before. Call it after
// every other check and right before running the work.
//
// Concurrent claims share fsyncs: each writes its line under the locks (so
// the check-and-record is atomic, across processes too), then waits until
// an fsync that started after its write has completed. A line another
// process reads before it is synced is still a claim (it refuses the id);
// a crash before the sync loses only claims whose Claim has not returned,
// so whose work never ran.
func (r *Replay) Claim(jti string, exp time.Time) error {
	f, n, err := r.record(jti, exp)
	if err != nil {
		return err
	}
	return r.syncThrough(f, n)
}

// syncThrough returns once write number n (to f) is durable.
func (r *Replay) syncThrough(f *os.File, n int64) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if r.synced.Load() >= n {
		return nil
	}
	// Everything written until now goes down with this fsync.
	upTo := r.written.Load()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("replay file: %w", err)
	}
	r.synced.Store(upTo)
	return nil
}

// record checks and writes the claim's line under the locks; it returns
// the file written and the write's number.
func (r *Replay) record(jti string, exp time.Time) (*os.File, int64, error) {
	if jti == "" {
		return nil, 0, errors.New("replay: empty receipt id")
	}
	id := base64.RawURLEncoding.EncodeToString([]byte(jti))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lockF == nil {
		return nil, 0, errors.New("replay: closed")
	}
	if err := r.lock(); err != nil {
		return nil, 0, err
	}
	defer r.unlock()
	if err := r.sync(); err != nil {
		return nil, 0, err
	}
	if _, ok := r.seen[id]; ok {
		return nil, 0, fmt.Errorf("%w: receipt id %q was honoured before", ErrReplayed, text.Cut(jti, 80))
	}
	// Bytes after the last whole line are a write that never completed (a
	// broker killed mid-append, or a full disk): every writer holds the
	// lock while it writes, so nobody is still writing them. Appending
	// after them would merge our line into theirs, and the id claimed
	// would not be found again.
	if err := r.dropTornTail(); err != nil {
		return nil, 0, err
	}
	line := fmt.Sprintf("%s %d\n", id, exp.Unix())
	if _, err := r.f.WriteString(line); err != nil {
		r.dropTornTail()
		return nil, 0, fmt.Errorf("replay file: %w", err)
	}
	r.off += int64(len(line))
	r.seen[id] = exp.Unix()
	return r.f, r.written.Add(1), nil
}

// dropTornTail truncates the file to its whole lines (r.off, as sync
// read them). Under the lock.
func (r *Replay) dropTornTail() error {
	st, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("replay file: %w", err)
	}
	if st.Size() > r.off {
		if err := r.f.Truncate(r.off); err != nil {
			return fmt.Errorf("replay file: drop an incomplete line: %w", err)
		}
	}
	return nil
}

// Len is the number of ids remembered.
func (r *Replay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// Close closes the files.
func (r *Replay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lockF == nil {
		return nil
	}
	if r.f != nil {
		r.f.Close()
	}
	err := r.lockF.Close()
	r.lockF, r.f = nil, nil
	return err
}
