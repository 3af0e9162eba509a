// Package state is a witness's durable memory: for each log origin, the
// latest checkpoint it cosigned, kept as one file that is only ever replaced
// atomically.
//
// Layout under the state directory:
//
//	LOCK                        held (flock) by the one process using the directory
//	checkpoints/<origin hash>   the latest cosigned checkpoint of that origin: the
//	                            signed note exactly as GET <origin hash>/checkpoint
//	                            serves it (log signature(s) + the witness's cosignatures)
//
// <origin hash> is the lowercase hex SHA-256 of the origin line, as in
// C2SP tlog-witness.
//
// A write goes to a new temporary file in the same directory, is fsynced,
// renamed over the old file, and the directory is fsynced; only then does
// Store return. A crash at any point leaves either the old or the new
// checkpoint, never a mixture and never nothing, and leftover temporary
// files are removed by the next Open. The witness calls Store before it
// answers with a cosignature, so no cosignature is ever given for a state
// that could be lost.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/zt-infra/ztlog/internal/fsx"
)

// ErrLocked means another process holds the state directory.
var ErrLocked = errors.New("state directory is in use by another process")

const (
	lockFile       = "LOCK"
	checkpointsDir = "checkpoints"
	tempMarker     = fsx.TempMarker
)

// Store is an opened state directory.
type Store struct {
	dir  string
	lock *os.File
}

// OriginHash is the name of an origin's file: lowercase hex SHA-256.
func OriginHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// ValidOriginHash reports whether s is a lowercase hex SHA-256.
func ValidOriginHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Open creates (if needed) and locks the state directory, and removes
// temporary files a crash left behind. It fails with ErrLocked when another
// process has it open.
func Open(dir string) (*Store, error) {
	cdir := filepath.Join(dir, checkpointsDir)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", cdir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (is another witness using this state directory?)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("state: lock %s: %w", dir, err)
	}
	entries, err := os.ReadDir(cdir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), tempMarker) {
			if err := os.Remove(filepath.Join(cdir, e.Name())); err != nil {
				lock.Close()
				return nil, fmt.Errorf("state: remove leftover %s: %w", e.Name(), err)
			}
		}
	}
	if err := fsx.SyncDir(cdir); err != nil {
		lock.Close()
		return nil, err
	}
	return &Store{dir: cdir, lock: lock}, nil
}

// Close releases the directory.
func (s *Store) Close() error {
	return s.lock.Close()
}

// Load returns the latest checkpoint stored for origin, or nil if there is
// none.
func (s *Store) Load(origin string) ([]byte, error) {
	return s.LoadHash(OriginHash(origin))
}

// LoadHash is Load by origin hash.
func (s *Store) LoadHash(originHash string) ([]byte, error) {
	if !ValidOriginHash(originHash) {
		return nil, fmt.Errorf("state: %q is not an origin hash", originHash)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, originHash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read checkpoint of %s: %w", originHash, err)
	}
	if len(b) == 0 {
		// Never written by Store; refuse rather than forget the log.
		return nil, fmt.Errorf("state: checkpoint file of %s is empty; the state directory was changed outside zt-witness", originHash)
	}
	return b, nil
}

// Store durably replaces the checkpoint of origin.
func (s *Store) Store(origin string, checkpoint []byte) error {
	if len(checkpoint) == 0 {
		return errors.New("state: refusing to store an empty checkpoint")
	}
	return WriteFileAtomic(s.dir, OriginHash(origin), checkpoint)
}

// WriteFileAtomic writes data to dir/name so that after a crash the file
// holds either its old content or data (fsx.WriteAtomic), mode 0600.
func WriteFileAtomic(dir, name string, data []byte) error {
	if err := fsx.WriteAtomicTraced(filepath.Join(dir, name), data, 0o600, crashpoint); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
