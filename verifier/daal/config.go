package daal

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
)

// ErrNoVerifierKey is LoadVerifierKey's answer to an empty key: the caller
// says where the key should have come from.
var ErrNoVerifierKey = errors.New("no log verifier key given: the log's checkpoint verifier key (`curl <log>/.well-known/ztlog`), or a file holding it")

// ParseAddress reads a 0x-hex account or contract address; what names it
// (the caller's name for the setting) goes into the error.
func ParseAddress(what, s string) (common.Address, error) {
	if s == "" {
		return common.Address{}, fmt.Errorf("%s is required (a 0x-prefixed 20-byte hex address)", what)
	}
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%s %q is not a 0x-prefixed 20-byte hex address", what, s)
	}
	return common.HexToAddress(s), nil
}

// ParseAddresses reads a comma-separated list of 0x-hex addresses (blank
// items are skipped; an empty list is none); what names the list in
// errors.
func ParseAddresses(what, list string) ([]common.Address, error) {
	var out []common.Address
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := ParseAddress(what, s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseCodeHash reads a contract runtime code hash in 0x-hex (32 bytes);
// what names it in errors.
func ParseCodeHash(what, s string) (common.Hash, error) {
	h := common.FromHex(s)
	if len(h) != 32 {
		return common.Hash{}, fmt.Errorf("%s %q is not a 32-byte 0x-hex hash", what, s)
	}
	return common.BytesToHash(h), nil
}

// LoadVerifierKey takes a log's checkpoint verifier key in signed-note text
// form ("<origin>+<hash>+<base64>"), or the path of a file holding one. An
// empty s is ErrNoVerifierKey.
func LoadVerifierKey(s string) (string, error) {
	if s == "" {
		return "", ErrNoVerifierKey
	}
	if _, err := note.NewVerifier(s); err == nil {
		return s, nil
	}
	raw, err := os.ReadFile(s)
	if err != nil {
		return "", fmt.Errorf("log key %q is neither a verifier key nor a readable file: %w", s, err)
	}
	k := strings.TrimSpace(string(raw))
	if strings.HasPrefix(k, "PRIVATE+KEY") {
		return "", fmt.Errorf("log key file %s holds the log's private signing key; give the verifier key instead (DAAL never needs the private key)", s)
	}
	if _, err := note.NewVerifier(k); err != nil {
		return "", fmt.Errorf("log key file %s: not a checkpoint verifier key: %w", s, err)
	}
	return k, nil
}
