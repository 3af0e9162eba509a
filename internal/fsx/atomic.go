package fsx

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TempMarker is in the name of every temporary file WriteAtomic makes, so
// that a directory's owner can remove those a crash left behind.
const TempMarker = ".tmp-"

// WriteAtomic writes data to path so that after a crash the file holds
// either its old content or data: a temporary file in the same directory,
// written and fsynced, given perm, renamed over path, then the directory
// fsynced so the new name survives too. It is the one atomic write of
// ztlog.
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	return WriteAtomicTraced(path, data, perm, nil)
}

// WriteAtomicTraced is WriteAtomic calling at (when not nil) between its
// steps: "begin", "written", "synced", "renamed", "done". Crash tests kill
// the process there.
func WriteAtomicTraced(path string, data []byte, perm fs.FileMode, at func(step string)) error {
	if at == nil {
		at = func(string) {}
	}
	dir, name := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	at("begin")
	f, err := os.CreateTemp(dir, name+TempMarker+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	at("written")
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	at("synced")
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	at("renamed")
	if err := SyncDir(dir); err != nil {
		return err
	}
	at("done")
	return nil
}

// SyncDir fsyncs a directory, so that names created or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
