// Package cosigner holds a witness's signing keys: C2SP tlog-cosignature
// cosignature/v1 keys, Ed25519 (signature type 0x04) or ML-DSA-44
// (signature type 0x06).
//
// Keys are written in the signed-note text forms:
//
//	signer key    PRIVATE+KEY+<name>+<key ID hex>+<base64(type || private key)>
//	verifier key  <name>+<key ID hex>+<base64(type || public key)>
//
// where the key ID is SHA-256(<name> || "\n" || type || public key)[:4] as
// tlog-cosignature defines. The name is the witness's name, a schema-less
// URL such as witness.example/w1. The verifier key is what logs put in their
// witness policy (`witness <name> <vkey> <url>`).
package cosigner

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"filippo.io/mldsa"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/internal/fsx"
)

// The signature algorithms a cosigner can use.
const (
	// Ed25519 is tlog-cosignature's Ed25519 cosignature/v1 (type 0x04); the
	// default, and what most witness clients accept today.
	Ed25519 = "ed25519"
	// MLDSA44 is tlog-cosignature's ML-DSA-44 cosignature (type 0x06),
	// which the spec recommends for new deployments.
	MLDSA44 = "ml-dsa-44"
)

const (
	typeEd25519        = 0x01
	typeEd25519CosigV1 = 0x04
	typeMLDSA44CosigV1 = 0x06
	privateKeyPrefix   = "PRIVATE+KEY+"
	privateKeyFields   = 5
)

// Cosigner is one signing key of a witness.
type Cosigner struct {
	// Signer produces cosignature lines for checkpoints.
	Signer note.Signer
	// Verifier checks them.
	Verifier note.Verifier
	// VerifierKey is the verifier in signed-note vkey form.
	VerifierKey string
	// Algorithm is Ed25519 or MLDSA44.
	Algorithm string
}

// Name is the witness name the key signs as.
func (c *Cosigner) Name() string { return c.Signer.Name() }

// Generate makes a new key for the witness called name with the given
// algorithm (Ed25519 when empty) and returns its signer and verifier keys in
// text form.
func Generate(name, algorithm string) (skey, vkey string, err error) {
	if err := validName(name); err != nil {
		return "", "", err
	}
	var material []byte
	switch algorithm {
	case Ed25519, "":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", "", err
		}
		material = append([]byte{typeEd25519CosigV1}, priv.Seed()...)
	case MLDSA44:
		priv, err := mldsa.GenerateKey(mldsa.MLDSA44())
		if err != nil {
			return "", "", err
		}
		material = append([]byte{typeMLDSA44CosigV1}, priv.Bytes()...)
	default:
		return "", "", fmt.Errorf("unknown cosignature algorithm %q (want %s or %s)", algorithm, Ed25519, MLDSA44)
	}
	// The key ID is computed by the signer; write the key with it.
	draft := privateKeyPrefix + name + "+00000000+" + base64.StdEncoding.EncodeToString(material)
	s, err := fnote.NewSignerForCosignatureV1(draft)
	if err != nil {
		return "", "", err
	}
	skey = fmt.Sprintf("%s%s+%08x+%s", privateKeyPrefix, name, s.KeyHash(), base64.StdEncoding.EncodeToString(material))
	c, err := Parse(skey)
	if err != nil {
		return "", "", err
	}
	return skey, c.VerifierKey, nil
}

// Parse reads a signer key written by Generate. A plain Ed25519 note signer
// key (type 0x01, e.g. from `ztlog keygen`) is accepted and used as the
// cosignature/v1 key it implies.
func Parse(skey string) (*Cosigner, error) {
	name, material, err := privateKey(skey)
	if err != nil {
		return nil, err
	}
	var alg string
	var public []byte
	switch material[0] {
	case typeEd25519, typeEd25519CosigV1:
		if len(material) != 1+ed25519.SeedSize {
			return nil, errors.New("not a witness signer key: the Ed25519 seed is not 32 bytes")
		}
		alg = Ed25519
		public = append([]byte{typeEd25519CosigV1}, ed25519.NewKeyFromSeed(material[1:]).Public().(ed25519.PublicKey)...)
	case typeMLDSA44CosigV1:
		priv, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), material[1:])
		if err != nil {
			return nil, fmt.Errorf("not a witness signer key: ML-DSA-44 private key: %w", err)
		}
		alg = MLDSA44
		public = append([]byte{typeMLDSA44CosigV1}, priv.PublicKey().Bytes()...)
	default:
		return nil, fmt.Errorf("not a witness signer key: signature type 0x%02x (want 0x04 Ed25519 or 0x06 ML-DSA-44 cosignatures)", material[0])
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("not a witness signer key: %w", err)
	}
	vkey := fmt.Sprintf("%s+%08x+%s", name, s.KeyHash(), base64.StdEncoding.EncodeToString(public))
	v, err := NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	// Prove the verifier key belongs to the signer: sign and verify once.
	n, err := note.Sign(&note.Note{Text: "example.com/key-check\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"}, s)
	if err == nil {
		_, err = note.Open(n, note.VerifierList(v))
	}
	if err != nil {
		return nil, fmt.Errorf("not a witness signer key: a test cosignature does not verify: %w", err)
	}
	return &Cosigner{Signer: s, Verifier: v, VerifierKey: vkey, Algorithm: alg}, nil
}

// Load reads a signer key file. It refuses a file others can read.
func Load(path string) (*Cosigner, error) {
	raw, err := fsx.Read(path, "witness key", "`zt-witness keygen`")
	if err != nil {
		return nil, err
	}
	c, err := Parse(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("witness key %s: %w", path, err)
	}
	return c, nil
}

// WriteKeyFile writes a signer key to path with mode 0600 and refuses to
// overwrite an existing file: a witness key is the witness's identity.
func WriteKeyFile(path, skey string) error {
	return fsx.Write(path, []byte(skey+"\n"), "a witness key")
}

// NewVerifier parses a witness verifier key (type 0x04 Ed25519 or 0x06
// ML-DSA-44 cosignature; a plain Ed25519 note key, type 0x01, is read as
// the cosignature/v1 key it implies).
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness verifier key %q: %w (want <name>+<id>+<base64 key> of type 0x04 or 0x06)", vkey, err)
	}
	return v, nil
}

func privateKey(skey string) (name string, material []byte, err error) {
	parts := strings.SplitN(skey, "+", privateKeyFields)
	if len(parts) != privateKeyFields || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", nil, errors.New("not a witness signer key (want PRIVATE+KEY+<name>+<id>+<base64>)")
	}
	if err := validName(parts[2]); err != nil {
		return "", nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) < 2 {
		return "", nil, errors.New("not a witness signer key: the key material is not base64")
	}
	return parts[2], raw, nil
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, " +\t\n\r") {
		return fmt.Errorf("witness name %q must be non-empty without spaces or '+'; use a schema-less URL such as witness.example/w1", name)
	}
	return nil
}
