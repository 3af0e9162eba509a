package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/contract/policysource"
	"github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
	"github.com/zt-infra/ztlog/internal/testutil/gcptest"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/gcp"
)

// TestServeGCP runs the ztlog binary on Tessera's GCP driver against
// spannertest and fake-gcs-server in this test process: a new log serves a
// verifying checkpoint; after entries are added (in-process, on the same
// database and bucket) a restarted server serves them with inclusion proofs
// against its checkpoint; --spanner from a config file and --gcs-endpoint
// from the environment work like the flags; another key is refused.
func TestServeGCP(t *testing.T) {
	emu := gcptest.Start(t) // SPANNER_EMULATOR_HOST reaches the children too
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "log.key")
	out, err := exec.Command(ztlogBin, "keygen", "--origin", "example.com/gcp", "--out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(out))
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(extraEnv []string, args ...string) (*exec.Cmd, *bytes.Buffer, string) {
		addr := devproc.FreeAddr(t)
		cmd := exec.Command(ztlogBin, append([]string{"serve", "--read-only", "--storage", "gcp", "--key", keyFile, "--listen", addr}, args...)...)
		cmd.Env = append(os.Environ(), extraEnv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &stderr, "http://" + addr
	}
	checkpoint := func(base string) *flog.Checkpoint {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			f, _ := client.NewHTTPFetcher(mustURL(base+"/log/"), nil)
			cp, _, _, err := client.FetchCheckpoint(t.Context(), f.ReadCheckpoint, verifier, "example.com/gcp")
			if err == nil {
				return cp
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint from %s: %v", base, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stop := func(cmd *exec.Cmd, stderr *bytes.Buffer) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve did not exit cleanly on SIGTERM: %v\n%s", err, stderr)
		}
	}

	// A new log, every setting on the command line.
	cmd, stderr, base := serve(nil, "--spanner", gcptest.Database, "--bucket", gcptest.Bucket, "--bucket-prefix", "logs/s", "--gcs-endpoint", emu.GCSURL)
	waitReady(t, base)
	if cp := checkpoint(base); cp.Size != 0 {
		t.Fatalf("new log has size %d", cp.Size)
	}
	stop(cmd, stderr)
	if !strings.Contains(stderr.String(), "gcp:"+gcptest.Database) {
		t.Errorf("the log does not name its storage:\n%s", stderr)
	}

	// Entries added through the log package on the same database and bucket.
	ctx := context.Background()
	key, err := ztlog.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	entries := [][]byte{[]byte(`{"n":0}`), []byte(`{"n":1}`), []byte(`{"n":2}`)}
	func() {
		l, err := openGCP(ctx, emu, "logs/s", key)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range entries {
			if idx, err := l.Append(ctx, e); err != nil || idx != uint64(i) {
				t.Fatalf("append %d: %d %v", i, idx, err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := l.Await(cctx, 2); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(cctx); err != nil {
			t.Fatal(err)
		}
	}()

	// Restart: --spanner from a config file, --gcs-endpoint from the
	// environment.
	cfg := filepath.Join(dir, "gcp.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"spanner":%q,"bucket":%q,"bucket-prefix":"logs/s"}`, gcptest.Database, gcptest.Bucket)), 0o644)
	cmd, stderr, base = serve([]string{"ZTLOG_GCS_ENDPOINT=" + emu.GCSURL}, "--config", cfg)
	waitReady(t, base)
	cp := checkpoint(base)
	if cp.Size != 3 {
		t.Fatalf("restarted log has size %d, want 3", cp.Size)
	}
	resp, err := http.Get(base + "/v1/entries/2")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Leaf           []byte   `json:"leaf"`
		TreeSize       uint64   `json:"tree_size"`
		InclusionProof [][]byte `json:"inclusion_proof"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/entries/2: %d %v", resp.StatusCode, err)
	}
	if !bytes.Equal(got.Leaf, entries[2]) || got.TreeSize != cp.Size {
		t.Fatalf("entry 2: %q at size %d", got.Leaf, got.TreeSize)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 2, cp.Size, rfc6962.DefaultHasher.HashLeaf(got.Leaf), got.InclusionProof, cp.Hash); err != nil {
		t.Fatalf("inclusion proof of entry 2: %v", err)
	}
	// A policy source stored by another frontend of the log (this process,
	// through the driver's object store) is served by this one.
	src := &policysource.Source{Engine: "cedar", Files: map[string][]byte{"policy.cedar": []byte("permit(principal, action, resource);\n")}}
	policyHash := "sha256:" + strings.Repeat("5a", 32)
	func() {
		b, err := gcp.Open(ctx, emu.Config("logs/s"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := server.ObjectPolicyStore(b.Objects).Put(ctx, policyHash, src); err != nil {
			t.Fatal(err)
		}
	}()
	status, doc := get(t, base+"/v1/policies/"+policyHash)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/policies/%s: %d %s", policyHash, status, doc)
	}
	if served, err := policysource.Parse([]byte(doc)); err != nil || served.Digest() != src.Digest() {
		t.Fatalf("served policy source %q (%v), want digest %s", doc, err, src.Digest())
	}
	stop(cmd, stderr)

	// Another key on the same log is refused, with the reason.
	other := filepath.Join(dir, "other.key")
	if err := exec.Command(ztlogBin, "keygen", "--origin", "example.com/gcp", "--out", other).Run(); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(ztlogBin, "serve", "--read-only", "--storage", "gcp", "--key", other, "--config", cfg, "--gcs-endpoint", emu.GCSURL, "--listen", devproc.FreeAddr(t))
	msg, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "not signed by the key") {
		t.Fatalf("serve with another key: %v\n%s", err, msg)
	}
	// A missing setting names its flag.
	c = exec.Command(ztlogBin, "serve", "--read-only", "--storage", "gcp", "--key", keyFile, "--bucket", gcptest.Bucket, "--listen", devproc.FreeAddr(t))
	msg, err = c.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "--spanner") {
		t.Fatalf("serve without --spanner: %v\n%s", err, msg)
	}
}

// openGCP opens the log on the emulators' database and bucket, in this
// process.
func openGCP(ctx context.Context, emu *gcptest.Emulators, prefix string, key *ztlog.Key) (*ztlog.Log, error) {
	b, err := gcp.Open(ctx, emu.Config(prefix), nil)
	if err != nil {
		return nil, err
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Close()
	}
	return l, err
}
