package fsx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteNewFileMode0600(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := Write(p, []byte("secret\n"), "a test key"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); string(b) != "secret\n" {
		t.Errorf("content %q", b)
	}
}

func TestWriteNeverOverwrites(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Write(p, []byte("new"), "a witness key")
	if err == nil || !strings.Contains(err.Error(), "a witness key is never overwritten") {
		t.Fatalf("err = %v, want refusal naming the key", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("existing file changed to %q", b)
	}
}

func TestReadRefusesAKeyOthersCanRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(p, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p, "log key", "`ztlog keygen`"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(p, 0o600)
	if b, err := Read(p, "log key", "`ztlog keygen`"); err != nil || string(b) != "secret" {
		t.Fatalf("0600 key: %q %v", b, err)
	}
	if _, err := Read(p+"x", "log key", "`ztlog keygen`"); err == nil || !strings.Contains(err.Error(), "ztlog keygen") {
		t.Fatalf("missing key: %v", err)
	}
}
