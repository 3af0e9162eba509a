package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A writable grant that resolves through a symbolic link is refused before
// anything is spawned: an earlier run can plant a link in its workdir, and
// Landlock would grant write access to the link's target, outside what the
// manifest (and the strict check of it) named. Read grants may resolve
// through links (/bin is one on merged-/usr systems).
func TestWritableGrantThroughASymlinkRefused(t *testing.T) {
	r := localRunner(t, "")
	outside := t.TempDir()
	m := manifest(t, "sh")
	link := filepath.Join(m.Workdir, "cache")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	m.Filesystem.ReadWrite = []string{link}
	if err := m.Validate(); err != nil {
		t.Fatalf("strict manifest rejected: %v", err)
	}
	target := filepath.Join(outside, "planted")
	o, err := r.Run(context.Background(), &Spec{Manifest: m, Argv: []string{"sh", "-c", "echo x > " + target}})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Run = %+v, %v; want a refusal naming the symbolic link", o, err)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatalf("the command wrote %s through the link", target)
	}
}
