package httpread

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	ztlog "github.com/zt-infra/ztlog/log"
)

func fetch(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// once the log has found the published
// checkpoint inconsistent with the one it verified before (two roots for
// one size), it refuses service (ErrInconsistent). GET /log/checkpoint must
// not go on serving the forked view: it reads the storage file directly,
// unverified.
func TestCheckpointNotServedAfterFork(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	good, err := f.log.Checkpoint()
	if err != nil || good.Size != 3 {
		t.Fatalf("checkpoint %v, %v", good, err)
	}
	_, _, before := fetch(t, f.srv.URL+"/log/checkpoint")
	if !bytes.Equal(before, good.Note) {
		t.Fatalf("served checkpoint differs from the verified one before the fork")
	}
	other := rfc6962.DefaultHasher.HashLeaf([]byte("not in the log"))
	forked, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: origin, Size: 3, Hash: other}.Marshal())}, f.log.Key().Signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "checkpoint"), forked, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := f.log.Await(actx, 1<<40) // switch the watcher to fast polling
		cancel()
		if errors.Is(err, ztlog.ErrInconsistent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher never noticed the fork: %v", err)
		}
	}
	status, _, _ := fetch(t, f.srv.URL+"/v1/entries/0")
	t.Logf("GET /v1/entries/0 after the fork: %d", status)
	status, _, body := fetch(t, f.srv.URL+"/log/checkpoint")
	if status == http.StatusOK && bytes.Equal(body, forked) {
		t.Fatalf("GET /log/checkpoint = 200 with the forked checkpoint (size 3, another root) after serving the verified one; the log itself reports ErrInconsistent")
	}
}

// an entry bundle written by a batch whose
// integration failed (the entry was never sequenced; Append said
// ErrStorage) is served with "immutable" caching, and is later overwritten
// with different bytes by the next batch. Resources beyond the integrated
// (let alone published) size must not be served as immutable.
func TestUnpublishedBundleNotServed(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	tiles0 := filepath.Join(f.dir, "tile", "0")
	if err := os.Rename(tiles0, tiles0+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tiles0, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.log.Append(ctx, []byte(`{"during":"the failure"}`)); !errors.Is(err, ztlog.ErrStorage) {
		t.Fatalf("append with tile/0 broken = %v, want ErrStorage", err)
	}
	u := f.srv.URL + "/log/tile/entries/000.p/2"
	status1, hdr1, body1 := fetch(t, u)
	t.Logf("GET %s while index 1 is not sequenced: %d, Cache-Control %q, body %q", "/log/tile/entries/000.p/2", status1, hdr1.Get("Cache-Control"), body1)

	os.Remove(tiles0)
	if err := os.Rename(tiles0+".away", tiles0); err != nil {
		t.Fatal(err)
	}
	idx, err := f.log.Append(ctx, []byte(`{"after":"the repair"}`))
	if err != nil || idx != 1 {
		t.Fatalf("append after repair = %d, %v", idx, err)
	}
	if _, err := f.log.Await(ctx, 1); err != nil {
		t.Fatal(err)
	}
	status2, _, body2 := fetch(t, u)
	if status1 == http.StatusOK && hdr1.Get("Cache-Control") == immutable && (status2 != http.StatusOK || !bytes.Equal(body1, body2)) {
		t.Fatalf("%s was served 200 %q as %q, and is now %d %q: an immutable resource changed", u, hdr1.Get("Cache-Control"), body1, status2, body2)
	}
}

// GET /log/checkpoint serves the storage
// file, which the process's own verified view (used by every other
// endpoint) trails by up to a second. A client that reads the checkpoint and
// then asks for a proof into it is told the size is beyond the published
// tree.
func TestCheckpointNotAheadOfProofs(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	if _, err := f.log.Append(ctx, []byte(`{"i":"new"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, body := fetch(t, f.srv.URL+"/log/checkpoint")
		var cp flog.Checkpoint
		if _, err := cp.Unmarshal(body); err != nil {
			t.Fatalf("checkpoint %q: %v", body, err)
		}
		if cp.Size == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("size 4 never published")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The client just read a checkpoint of size 4 from /log/checkpoint.
	status, _, body := fetch(t, f.srv.URL+"/v1/proofs/consistency?old=3&new=4")
	if status != http.StatusOK {
		t.Fatalf("GET /v1/proofs/consistency?old=3&new=4 right after /log/checkpoint served size 4 = %d %s", status, body)
	}
	status, _, body = fetch(t, f.srv.URL+"/v1/entries/3")
	if status != http.StatusOK {
		t.Fatalf("GET /v1/entries/3 right after /log/checkpoint served size 4 = %d %s", status, body)
	}
}

// "gzip;q=0.0" (or q=0.000, Q=0) refuses gzip
// (RFC 9110 §12.4.2: qvalue 0 means "not acceptable"), but the bundle
// endpoint still sends Content-Encoding: gzip.
func TestAcceptsGzipQZero(t *testing.T) {
	for _, h := range []string{"gzip;q=0", "gzip;q=0.0", "gzip; q=0.000", "gzip;Q=0", "identity, gzip;q=0.00"} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Encoding", h)
		if acceptsGzip(r) {
			t.Errorf("acceptsGzip(%q) = true, want false", h)
		}
	}
}
