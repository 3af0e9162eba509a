package broker

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/zt-infra/ztlog/internal/fsx"
)

// A courier journal makes a result durable with one fdatasync (shared by
// concurrent results) instead of the two fsyncs and the rename of a
// result file written atomically: the Courier appends each result to its
// own journal, <outbox>/courier-<random>.journal, syncs it, answers, and
// then (in the delivery) writes the usual result-<sha256>.json file,
// unsynced, for every reader of the outbox. The journal is what survives a
// crash; the file is what a killed process leaves visible. A result whose
// first delivery fails is written atomically as a file (synced) before its
// journal record is marked done; one delivered is marked done after its
// file is removed.
//
// Format (broker.md, "Courier journal"): a sequence of
//
//	R <sha256 hex of body> <len(body), decimal>\n<body>\n   a kept result
//	D <sha256 hex>\n                                     delivered or filed
//
// Every fdatasync covers all that was written before it, so after a crash
// the file is an intact prefix followed by, at most, writes never synced
// (of calls never answered): reading stops at the first record that is
// not whole or whose body does not have its digest.
//
// The owning process holds an exclusive flock on its journal; OpenOutbox
// recovers journals nobody holds (left by a process that ended): every
// result not marked done is written atomically as a result file, then the
// journal is removed.
type journal struct {
	dir  string
	path string
	f    *os.File

	mu      sync.Mutex
	broken  error             // a failed write or sync: the journal is not used any more
	size    int64             // bytes of whole records
	undone  map[string][]byte // results kept and not yet done, by digest
	written atomic.Int64      // records written
	// Group commit: a record is durable once an fdatasync that began after
	// its write has completed.
	syncMu sync.Mutex
	synced atomic.Int64
}

// journalSuffix names courier journals in an outbox directory.
const journalSuffix = ".journal"

// journalCompactAt: a journal with nothing undone is truncated once it is
// this large.
const journalCompactAt = 1 << 20

// openJournal creates this process's journal in dir, locked.
func openJournal(dir string) (*journal, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := "courier-" + hex.EncodeToString(rnd[:])
	// Created under another name, locked, then renamed: a recovery by
	// another process (which looks at *.journal) never sees it unlocked.
	tmp := filepath.Join(dir, name+fsx.TempMarker+"journal")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("courier journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("courier journal lock: %w", err)
	}
	path := filepath.Join(dir, name+journalSuffix)
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("courier journal: %w", err)
	}
	if err := fsx.SyncDir(dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("courier journal: %w", err)
	}
	return &journal{dir: dir, path: path, f: f, undone: map[string][]byte{}}, nil
}

// keep appends body's record and returns once it is durable.
func (j *journal) keep(sum string, body []byte) error {
	n, err := j.write(fmt.Appendf(nil, "R %s %d\n%s\n", sum, len(body), body), sum, body)
	if err != nil {
		return err
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced.Load() >= n {
		return nil
	}
	upTo := j.written.Load()
	if err := syscall.Fdatasync(int(j.f.Fd())); err != nil {
		// After a failed sync the file's state is unknown: stop using it.
		j.mu.Lock()
		j.broken = fmt.Errorf("courier journal: fdatasync: %w", err)
		j.mu.Unlock()
		return j.broken
	}
	j.synced.Store(upTo)
	return nil
}

// write appends rec (body's record when body is not nil, else a done
// mark) and returns its number.
func (j *journal) write(rec []byte, sum string, body []byte) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		return 0, j.broken
	}
	if j.f == nil {
		return 0, errors.New("courier journal: closed")
	}
	if _, err := j.f.Write(rec); err != nil {
		// Drop what was written of it, so that the next record starts on
		// a record boundary; if even that fails, stop using the journal.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = fmt.Errorf("courier journal: %w (and dropping the incomplete record: %w)", err, terr)
			return 0, j.broken
		}
		return 0, fmt.Errorf("courier journal: %w", err)
	}
	j.size += int64(len(rec))
	if body != nil {
		j.undone[sum] = body
	}
	return j.written.Add(1), nil
}

// done marks the result sum delivered or filed (not synced: a mark lost in
// a crash only makes the recovery file the result again, and posting a
// committed result again is harmless). With nothing left undone, a large
// journal is emptied.
func (j *journal) done(sum string) {
	if _, err := j.write([]byte("D "+sum+"\n"), sum, nil); err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.undone, sum)
	if len(j.undone) == 0 && j.size >= journalCompactAt && j.broken == nil {
		if err := j.f.Truncate(0); err != nil {
			j.broken = fmt.Errorf("courier journal: emptying: %w", err)
			return
		}
		j.size = 0
	}
}

// close files what is still undone (atomically, synced), removes the
// journal and releases it.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	var errs []error
	for sum, body := range j.undone {
		if err := fsx.WriteAtomic(filepath.Join(j.dir, resultName(sum)), body, 0o600); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, os.Remove(j.path))
	}
	errs = append(errs, j.f.Close())
	j.f = nil
	return errors.Join(errs...)
}

// resultName is the outbox file name of the result with digest sum.
func resultName(sum string) string { return "result-" + sum + ".json" }

// resultSum is the hex sha256 of body.
func resultSum(body []byte) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}

// readJournal reads the records of a journal: the kept results not marked
// done, in order. It stops, without error, at the first record that is not
// whole or not intact (writes never synced); it fails only on a read
// error.
func readJournal(rd io.Reader) (undone [][]byte, err error) {
	br := bufio.NewReader(rd)
	kept := map[string][]byte{}
	var order []string
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		kind, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if kind == "D" && isDigest(rest) {
			delete(kept, rest)
			continue
		}
		sum, n, ok := strings.Cut(rest, " ")
		size, perr := strconv.Atoi(n)
		if kind != "R" || !ok || !isDigest(sum) || perr != nil || size < 0 || size > maxResultBody {
			break
		}
		body := make([]byte, size+1)
		if _, err := io.ReadFull(br, body); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if body[size] != '\n' || resultSum(body[:size]) != sum {
			break
		}
		if _, ok := kept[sum]; !ok {
			order = append(order, sum)
		}
		kept[sum] = body[:size]
	}
	for _, sum := range order {
		if b, ok := kept[sum]; ok {
			undone = append(undone, b)
			delete(kept, sum)
		}
	}
	return undone, nil
}

// maxResultBody bounds one journal record (a result body is a few KiB).
const maxResultBody = 16 << 20

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// recoverJournals files the results that journals left by ended processes
// hold undone (atomically, synced) and removes those journals. A journal
// whose process still runs (it holds its lock) is left alone.
func recoverJournals(dir string) (int, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*"+journalSuffix))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range paths {
		k, err := recoverJournal(dir, p)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func recoverJournal(dir, path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // recovered by another process meanwhile
	}
	if err != nil {
		return 0, fmt.Errorf("courier journal %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, nil // its process runs
		}
		return 0, fmt.Errorf("courier journal %s: lock: %w", path, err)
	}
	if _, err := os.Stat(path); err != nil {
		return 0, nil // removed after another recovery, before our lock
	}
	undone, err := readJournal(f)
	if err != nil {
		return 0, fmt.Errorf("courier journal %s: %w", path, err)
	}
	for _, body := range undone {
		// Always rewritten: a file of the same name may be one written
		// unsynced, and torn by the crash.
		if err := fsx.WriteAtomic(filepath.Join(dir, resultName(resultSum(body))), body, 0o600); err != nil {
			return 0, fmt.Errorf("courier journal %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return len(undone), fmt.Errorf("courier journal %s: %w", path, err)
	}
	return len(undone), nil
}
