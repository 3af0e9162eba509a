package daal

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// A missing passphrase file is ErrNoPassphraseFile, which names no
// command-line flag (the command maps it to its own).
func TestNoPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	_, err := WriteKeystore(filepath.Join(dir, "key.json"), "", true)
	if !errors.Is(err, ErrNoPassphraseFile) {
		t.Errorf("WriteKeystore without a passphrase file: %v, want ErrNoPassphraseFile", err)
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "key.json")
	if _, err := writeKeystore(path, "secret", key, true); err != nil {
		t.Fatal(err)
	}
	if _, err = LoadKeystore(path, ""); !errors.Is(err, ErrNoPassphraseFile) {
		t.Errorf("LoadKeystore without a passphrase file: %v, want ErrNoPassphraseFile", err)
	}
	if strings.Contains(ErrNoPassphraseFile.Error(), "--") {
		t.Errorf("ErrNoPassphraseFile %q names a flag", ErrNoPassphraseFile)
	}
}

// NewChain refuses the zero contract address without naming a flag.
func TestNewChainNoContract(t *testing.T) {
	e := newEnv(t)
	_, err := NewChain(e.ctx, e.rpc, [20]byte{})
	if err == nil {
		t.Fatal("NewChain accepted the zero contract address")
	}
	if strings.Contains(err.Error(), "--") {
		t.Errorf("error %q names a flag", err)
	}
}
