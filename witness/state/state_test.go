package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Load("example.com/log"); b != nil || err != nil {
		t.Fatalf("empty store: %q, %v", b, err)
	}
	for _, cp := range []string{"first\n", "second\n"} {
		if err := s.Store("example.com/log", []byte(cp)); err != nil {
			t.Fatal(err)
		}
		if b, err := s.Load("example.com/log"); string(b) != cp || err != nil {
			t.Fatalf("Load = %q, %v; want %q", b, err, cp)
		}
	}
	// The file is named by the origin hash (sha256 of "example.com/log").
	got := OriginHash("example.com/log")
	if !ValidOriginHash(got) || len(got) != 64 {
		t.Fatalf("OriginHash = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints", got)); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.LoadHash(got); string(b) != "second\n" {
		t.Fatalf("LoadHash = %q", b)
	}
	if _, err := s.LoadHash("../../etc/passwd"); err == nil {
		t.Fatal("LoadHash accepted a path")
	}
	if err := s.Store("example.com/log", nil); err == nil {
		t.Fatal("stored an empty checkpoint")
	}
	s.Close()
}

func TestOriginHashIsSHA256Hex(t *testing.T) {
	// sha256("") and sha256("abc"), from FIPS 180-2.
	if OriginHash("") != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" ||
		OriginHash("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal("OriginHash is not lowercase hex SHA-256")
	}
	for _, s := range []string{"", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", strings.Repeat("g", 64), strings.Repeat("a", 63)} {
		if ValidOriginHash(s) {
			t.Errorf("ValidOriginHash(%q)", s)
		}
	}
}

func TestLockedByOneProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	s.Close()
	s2, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOpenRemovesLeftoversAndRefusesEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	s.Store("o", []byte("cp\n"))
	s.Close()
	cdir := filepath.Join(dir, "checkpoints")
	leftover := filepath.Join(cdir, OriginHash("o")+".tmp-123")
	os.WriteFile(leftover, []byte("half"), 0o600)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("leftover temporary file was not removed")
	}
	if b, _ := s.Load("o"); string(b) != "cp\n" {
		t.Fatalf("checkpoint lost: %q", b)
	}
	os.WriteFile(filepath.Join(cdir, OriginHash("p")), nil, 0o600)
	if _, err := s.Load("p"); err == nil {
		t.Fatal("an empty state file was read as no state")
	}
}
