// Package fsx writes files the durable way: WriteAtomic replaces a file
// atomically (fsync of the file and its directory); Read and Write handle
// private key files. Key files are written the one way ztlog's keys are
// written: a new file, mode 0600, synced to disk, never overwriting an
// existing one — a key file is an identity (a log's, a witness's, a receipt
// issuer's), and replacing it by accident forks that identity.
package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Read reads a key file, refusing one that others can read. name says
// whose key it is in errors (e.g. "log key") and create how to make one.
func Read(path, name, create string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (create one with %s)", name, err, create)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is readable by others (mode %v); chmod 600 it", name, path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return raw, nil
}

// Write creates path with mode 0600 and writes data to it, synced. If path
// already exists it is left untouched and the error says whose identity the
// file holds (owner, e.g. "a log key") and what to do.
func Write(path string, data []byte, owner string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; %s is never overwritten (move it away first if you really mean to replace that identity)", path, owner)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The new name must survive a crash too: a log that signed with a key
	// whose file then vanished could never be opened again.
	return SyncDir(filepath.Dir(path))
}
