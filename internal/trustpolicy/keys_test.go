package trustpolicy

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"testing"

	"filippo.io/mldsa"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TEST VECTOR KEYS. Every key in this package's tests and in
// testdata/policy is derived from a public seed string below; they are not
// secret and must never sign anything real.

func seed(label string) []byte {
	s := sha256.Sum256([]byte("ztlog test vector key: " + label))
	return s[:]
}

func keyID(name string, typeAndKey []byte) uint32 {
	h := sha256.Sum256(append([]byte(name+"\n"), typeAndKey...))
	return binary.BigEndian.Uint32(h[:4])
}

func keyPair(name string, typ byte, pub, priv []byte) (skey, vkey string) {
	pk := append([]byte{typ}, pub...)
	id := keyID(name, pk)
	vkey = fmt.Sprintf("%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(pk))
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(append([]byte{typ}, priv...)))
	return skey, vkey
}

// testLogKey is the Ed25519 note key (type 0x01) of a test log.
func testLogKey(t testing.TB, origin string) (note.Signer, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(seed("log " + origin))
	skey, vkey := keyPair(origin, TypeEd25519, priv.Public().(ed25519.PublicKey), priv.Seed())
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// testWitnessKey is an Ed25519 cosignature/v1 key (type 0x04).
func testWitnessKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(seed("witness " + name))
	skey, vkey := keyPair(name, TypeCosignatureEd25519, priv.Public().(ed25519.PublicKey), priv.Seed())
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// testMLDSAWitnessKey is an ML-DSA-44 cosignature/v1 key (type 0x06).
func testMLDSAWitnessKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	k, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), seed("mldsa witness "+name))
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey := keyPair(name, TypeCosignatureMLDSA44, k.PublicKey().Bytes(), k.Bytes())
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}
