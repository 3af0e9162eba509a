package cosigner

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/mldsa"
	"golang.org/x/mod/sumdb/note"
)

const checkpoint = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

// TestEd25519FollowsSpec checks the key ID and the signed message against
// the text of C2SP tlog-cosignature, computed here independently.
func TestEd25519FollowsSpec(t *testing.T) {
	skey, vkey, err := Generate("witness.example/w1", Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(skey)
	if err != nil {
		t.Fatal(err)
	}
	if c.VerifierKey != vkey || c.Algorithm != Ed25519 || c.Name() != "witness.example/w1" {
		t.Fatalf("parsed %+v, generated vkey %s", c, vkey)
	}
	parts := strings.SplitN(vkey, "+", 3)
	pub, _ := base64.StdEncoding.DecodeString(parts[2])
	if len(pub) != 33 || pub[0] != 0x04 {
		t.Fatalf("vkey key material: type 0x%02x, %d bytes; want 0x04 and 32 bytes", pub[0], len(pub)-1)
	}
	h := sha256.Sum256([]byte("witness.example/w1\n" + string(pub)))
	if want := fmt.Sprintf("%08x", binary.BigEndian.Uint32(h[:4])); parts[1] != want {
		t.Fatalf("key ID %s, spec says %s", parts[1], want)
	}

	signed, err := note.Sign(&note.Note{Text: checkpoint}, c.Signer)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(strings.SplitN(string(signed), "\n\n", 2)[1], "\n")
	name, b64, _ := strings.Cut(strings.TrimPrefix(line, "— "), " ")
	sig, _ := base64.StdEncoding.DecodeString(b64)
	if name != "witness.example/w1" || len(sig) != 4+8+64 {
		t.Fatalf("signature line %q", line)
	}
	if fmt.Sprintf("%08x", binary.BigEndian.Uint32(sig)) != parts[1] {
		t.Fatal("signature key ID differs from the vkey's")
	}
	ts := binary.BigEndian.Uint64(sig[4:])
	if ts == 0 {
		t.Fatal("timestamp is zero")
	}
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, checkpoint)
	if !ed25519.Verify(ed25519.PublicKey(pub[1:]), []byte(msg), sig[12:]) {
		t.Fatal("signature is not Ed25519 over the spec's cosignature/v1 message")
	}
	// And the library verifier agrees.
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
}

// TestMLDSA44FollowsSpec checks the ML-DSA-44 key ID and cosigned_message.
func TestMLDSA44FollowsSpec(t *testing.T) {
	skey, vkey, err := Generate("witness.example/pq", MLDSA44)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(skey)
	if err != nil {
		t.Fatal(err)
	}
	if c.VerifierKey != vkey || c.Algorithm != MLDSA44 {
		t.Fatalf("parsed %+v", c)
	}
	parts := strings.SplitN(vkey, "+", 3)
	pub, _ := base64.StdEncoding.DecodeString(parts[2])
	if len(pub) != 1+1312 || pub[0] != 0x06 {
		t.Fatalf("vkey key material: type 0x%02x, %d bytes", pub[0], len(pub)-1)
	}
	h := sha256.Sum256([]byte("witness.example/pq\n" + string(pub)))
	if want := fmt.Sprintf("%08x", binary.BigEndian.Uint32(h[:4])); parts[1] != want {
		t.Fatalf("key ID %s, spec says %s", parts[1], want)
	}
	signed, err := note.Sign(&note.Note{Text: checkpoint}, c.Signer)
	if err != nil {
		t.Fatal(err)
	}
	b64 := strings.Fields(strings.SplitN(string(signed), "\n\n", 2)[1])[2]
	sig, _ := base64.StdEncoding.DecodeString(b64)
	if len(sig) != 4+8+2420 {
		t.Fatalf("signature is %d bytes", len(sig))
	}
	ts := binary.BigEndian.Uint64(sig[4:])
	root, _ := base64.StdEncoding.DecodeString("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
	// struct { label[12]; cosigner_name<1..255>; u64 timestamp; log_origin<1..255>; u64 start; u64 end; hash[32] }
	msg := []byte("subtree/v1\n\x00")
	msg = append(msg, byte(len("witness.example/pq")))
	msg = append(msg, "witness.example/pq"...)
	msg = binary.BigEndian.AppendUint64(msg, ts)
	msg = append(msg, byte(len("example.com/behind-the-sofa")))
	msg = append(msg, "example.com/behind-the-sofa"...)
	msg = binary.BigEndian.AppendUint64(msg, 0)
	msg = binary.BigEndian.AppendUint64(msg, 20852163)
	msg = append(msg, root...)
	pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), pub[1:])
	if err != nil {
		t.Fatal(err)
	}
	if ts == 0 || mldsa.Verify(pk, msg, sig[12:], nil) != nil {
		t.Fatal("signature is not ML-DSA-44 over the spec's cosigned_message")
	}
}

func TestPlainEd25519KeyIsAccepted(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "witness.example/plain")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(skey)
	if err != nil {
		t.Fatal(err)
	}
	// The verifier is the cosignature/v1 form of the plain key.
	if c.VerifierKey == vkey || !strings.HasPrefix(c.VerifierKey, "witness.example/plain+") {
		t.Fatalf("vkey %s", c.VerifierKey)
	}
}

func TestParseRejects(t *testing.T) {
	_, mlvkey, _ := Generate("w", MLDSA44)
	for name, skey := range map[string]string{
		"empty":         "",
		"not private":   "witness.example/w1+01234567+AQ==",
		"bad base64":    "PRIVATE+KEY+w+01234567+%%%",
		"short seed":    "PRIVATE+KEY+w+01234567+" + base64.StdEncoding.EncodeToString(append([]byte{4}, make([]byte, 31)...)),
		"unknown type":  "PRIVATE+KEY+w+01234567+" + base64.StdEncoding.EncodeToString(append([]byte{2}, make([]byte, 32)...)),
		"space in name": "PRIVATE+KEY+a b+01234567+" + base64.StdEncoding.EncodeToString(append([]byte{4}, make([]byte, 32)...)),
		"a vkey":        mlvkey,
	} {
		if _, err := Parse(skey); err == nil {
			t.Errorf("%s: Parse accepted %q", name, skey)
		}
	}
	if _, _, err := Generate("w", "rsa"); err == nil {
		t.Error("Generate accepted an unknown algorithm")
	}
	if _, _, err := Generate("bad name", Ed25519); err == nil {
		t.Error("Generate accepted a name with a space")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.key")
	skey, vkey, _ := Generate("witness.example/w1", Ed25519)
	if err := WriteKeyFile(path, skey); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(path, skey); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("second write: %v", err)
	}
	c, err := Load(path)
	if err != nil || c.VerifierKey != vkey {
		t.Fatalf("Load: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	ed, _, _ := Generate("witness.example/w1", Ed25519)
	ml, _, _ := Generate("witness.example/w1", MLDSA44)
	f.Add(ed)
	f.Add(ml)
	f.Add("PRIVATE+KEY+w+00000000+BA==")
	f.Fuzz(func(t *testing.T, skey string) {
		c, err := Parse(skey)
		if err != nil {
			return
		}
		// Whatever parses signs checkpoints its own verifier key accepts.
		v, err := NewVerifier(c.VerifierKey)
		if err != nil {
			t.Fatalf("vkey %q of an accepted key does not parse: %v", c.VerifierKey, err)
		}
		n, err := note.Sign(&note.Note{Text: checkpoint}, c.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(n, note.VerifierList(v)); err != nil {
			t.Fatalf("signature does not verify with the key's vkey: %v", err)
		}
	})
}
