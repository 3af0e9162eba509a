package daal

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
)

// ParseAddress reads a 0x-hex account or contract address; what names it
// (e.g. "--contract") goes into the error.
func ParseAddress(what, s string) (common.Address, error) {
	if s == "" {
		return common.Address{}, fmt.Errorf("%s is required (a 0x-prefixed 20-byte hex address)", what)
	}
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%s %q is not a 0x-prefixed 20-byte hex address", what, s)
	}
	return common.HexToAddress(s), nil
}

// LoadVerifierKey takes a log's checkpoint verifier key in signed-note text
// form ("<origin>+<hash>+<base64>"), or the path of a file holding one.
func LoadVerifierKey(s string) (string, error) {
	if s == "" {
		return "", errors.New("--log-key is required: the log's checkpoint verifier key (`curl <log>/.well-known/ztlog`), or a file holding it")
	}
	if _, err := note.NewVerifier(s); err == nil {
		return s, nil
	}
	raw, err := os.ReadFile(s)
	if err != nil {
		return "", fmt.Errorf("--log-key %q is neither a verifier key nor a readable file: %v", s, err)
	}
	k := strings.TrimSpace(string(raw))
	if strings.HasPrefix(k, "PRIVATE+KEY") {
		return "", fmt.Errorf("--log-key %s holds the log's private signing key; give the verifier key instead (DAAL never needs the private key)", s)
	}
	if _, err := note.NewVerifier(k); err != nil {
		return "", fmt.Errorf("--log-key %s: not a checkpoint verifier key: %v", s, err)
	}
	return k, nil
}
