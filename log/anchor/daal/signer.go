package daal

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Signer signs the anchor transactions. KeySigner holds a key in memory,
// loaded from an encrypted keystore file; a KMS- or HSM-backed signer
// implements the same two methods and never reveals its key.
type Signer interface {
	// Address is the sender address of every transaction it signs.
	Address() common.Address
	// SignTx signs tx for chainID (EIP-155 / EIP-1559).
	SignTx(ctx context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error)
}

// KeySigner signs with an in-memory secp256k1 key.
type KeySigner struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

// NewKeySigner signs with key.
func NewKeySigner(key *ecdsa.PrivateKey) *KeySigner {
	return &KeySigner{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// Address implements Signer.
func (s *KeySigner) Address() common.Address { return s.addr }

// SignTx implements Signer.
func (s *KeySigner) SignTx(_ context.Context, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	return types.SignTx(tx, types.LatestSignerForChainID(chainID), s.key)
}

// LoadKeystore decrypts a Web3 Secret Storage (keystore v3) file, the format
// of geth's keystore/ and of `ztlog daal keygen`, with the passphrase in
// passphraseFile (trailing newline ignored).
func LoadKeystore(path, passphraseFile string) (*KeySigner, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w (create one with `ztlog daal keygen`)", err)
	}
	pass, err := readPassphrase(passphraseFile)
	if err != nil {
		return nil, err
	}
	k, err := keystore.DecryptKey(raw, pass)
	if err != nil {
		return nil, fmt.Errorf("keystore %s: %w (wrong passphrase file?)", path, err)
	}
	return NewKeySigner(k.PrivateKey), nil
}

// WriteKeystore creates a new key, writes it to path encrypted with the
// passphrase in passphraseFile (mode 0600, never overwriting), and returns
// its address. light uses fast scrypt parameters (tests only).
func WriteKeystore(path, passphraseFile string, light bool) (common.Address, error) {
	pass, err := readPassphrase(passphraseFile)
	if err != nil {
		return common.Address{}, err
	}
	pk, err := crypto.GenerateKey()
	if err != nil {
		return common.Address{}, err
	}
	return writeKeystore(path, pass, pk, light)
}

func writeKeystore(path, pass string, pk *ecdsa.PrivateKey, light bool) (common.Address, error) {
	n, p := keystore.StandardScryptN, keystore.StandardScryptP
	if light {
		n, p = keystore.LightScryptN, keystore.LightScryptP
	}
	k := &keystore.Key{Address: crypto.PubkeyToAddress(pk.PublicKey), PrivateKey: pk}
	b, err := keystore.EncryptKey(k, pass, n, p)
	if err != nil {
		return common.Address{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return common.Address{}, fmt.Errorf("keystore: %w (an existing key file is never overwritten)", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return common.Address{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return common.Address{}, err
	}
	return k.Address, f.Close()
}

// ErrNoPassphraseFile is LoadKeystore's and WriteKeystore's answer to an
// empty passphrase file name.
var ErrNoPassphraseFile = errors.New("daal: no passphrase file given: the file holding the keystore's passphrase")

func readPassphrase(path string) (string, error) {
	if path == "" {
		return "", ErrNoPassphraseFile
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
