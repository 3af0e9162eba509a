// Package keyfile writes private key files the one way ztlog's keys are
// written: a new file, mode 0600, synced to disk, never overwriting an
// existing one — a key file is an identity (a log's, a witness's, a receipt
// issuer's), and replacing it by accident forks that identity.
package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

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
	return f.Close()
}
