package daal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
)

func TestParseAddresses(t *testing.T) {
	got, err := ParseAddresses("senders", " 0x00000000000000000000000000000000000000aa, ,0x00000000000000000000000000000000000000bB")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d addresses, want 2", len(got))
	}
	if got[0] != common.HexToAddress("0xaa") {
		t.Errorf("first %s, want 0x…aa", got[0].Hex())
	}
	if got[1] != common.HexToAddress("0xbb") {
		t.Errorf("second %s, want 0x…bb", got[1].Hex())
	}
}

func TestParseAddressesEmptyIsNone(t *testing.T) {
	got, err := ParseAddresses("senders", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("%d addresses from an empty list, want 0", len(got))
	}
}

func TestParseAddressesNamesTheSetting(t *testing.T) {
	_, err := ParseAddresses("the senders", "0x00000000000000000000000000000000000000aa,nope")
	if err == nil {
		t.Fatal("a malformed address was accepted")
	}
	if !strings.Contains(err.Error(), `the senders "nope"`) {
		t.Errorf("error %q does not name the setting and the value", err)
	}
}

func TestParseCodeHash(t *testing.T) {
	want := common.HexToHash("0x" + strings.Repeat("ab", 32))
	got, err := ParseCodeHash("code", want.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got %s, want %s", got.Hex(), want.Hex())
	}
	if _, err := ParseCodeHash("code", "0xabcd"); err == nil {
		t.Error("a 2-byte hash was accepted")
	}
}

// LoadVerifierKey's errors describe the key, never a command's flag.
func TestLoadVerifierKey(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vfile, sfile := filepath.Join(dir, "log.pub"), filepath.Join(dir, "log.key")
	os.WriteFile(vfile, []byte(vkey+"\n"), 0o600)
	os.WriteFile(sfile, []byte(skey+"\n"), 0o600)

	if got, err := LoadVerifierKey(vkey); err != nil || got != vkey {
		t.Errorf("the key itself: %q, %v; want it back", got, err)
	}
	if got, err := LoadVerifierKey(vfile); err != nil || got != vkey {
		t.Errorf("a file holding the key: %q, %v; want the key", got, err)
	}
	if _, err := LoadVerifierKey(""); !errors.Is(err, ErrNoVerifierKey) {
		t.Errorf("no key: %v, want ErrNoVerifierKey", err)
	}
	if _, err := LoadVerifierKey(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an absent file: %v, want it to wrap fs.ErrNotExist", err)
	}
	_, err = LoadVerifierKey(sfile)
	if err == nil || !strings.Contains(err.Error(), "private signing key") {
		t.Errorf("the private key's file: %v, want a refusal naming the private key", err)
	}
	for _, e := range []error{err, ErrNoVerifierKey} {
		if strings.Contains(e.Error(), "--") {
			t.Errorf("error %q names a command-line flag", e)
		}
	}
}

func TestReadLegacyRecords(t *testing.T) {
	recs, err := ReadLegacyRecords("testdata/legacy/denied-audit.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Errorf("%d records, want 1", len(recs))
	}
	if _, err := ReadLegacyRecords(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an absent file: %v, want it to wrap fs.ErrNotExist", err)
	}
}
