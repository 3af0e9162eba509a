package log

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/internal/fsx"
)

// GenerateKey returns a new Ed25519 note signer key for the log with the
// given origin and its verifier key, in the signed-note text forms
// ("PRIVATE+KEY+<origin>+<hash>+<base64>" and "<origin>+<hash>+<base64>").
func GenerateKey(origin string) (skey, vkey string, err error) {
	if err := validOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

// WriteKeyFile writes a signer key to path with mode 0600. It refuses to
// overwrite an existing file: a log's key is its identity.
func WriteKeyFile(path, skey string) error {
	return fsx.Write(path, []byte(skey+"\n"), "a log key")
}

// Key is the log's checkpoint signing key.
type Key struct {
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Verifier checks them.
	Verifier note.Verifier
	// VerifierKey is the verifier in signed-note text form, which is what
	// clients, witnesses and auditors are given.
	VerifierKey string
}

// Origin is the log origin the key signs for.
func (k *Key) Origin() string { return k.Signer.Name() }

// LoadKey reads a signer key file written by WriteKeyFile. It refuses a file
// that others can read.
func LoadKey(path string) (*Key, error) {
	raw, err := fsx.Read(path, "log key", "`ztlog keygen`")
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("log key %s: %w", path, err)
	}
	return k, nil
}

// ParseKey parses an Ed25519 note signer key
// ("PRIVATE+KEY+<origin>+<hash>+<base64>").
func ParseKey(skey string) (*Key, error) {
	s, v, err := fnote.NewEd25519SignerVerifier(skey)
	if err != nil {
		return nil, fmt.Errorf("not an Ed25519 note signer key: %w", err)
	}
	// The last field is base64(0x01 || 32-byte seed).
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("not an Ed25519 note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, errors.New("not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: s, Verifier: v, VerifierKey: vkey}, nil
}

func validOrigin(origin string) error {
	if origin == "" {
		return errors.New("origin is empty; use a schema-less URL such as example.com/ztlog")
	}
	if strings.ContainsAny(origin, " +\t\n\r") {
		return fmt.Errorf("origin %q contains a space or '+'; use a schema-less URL such as example.com/ztlog", origin)
	}
	return nil
}
