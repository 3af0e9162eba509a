package httpread

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

const origin = "test.example/ztlog-server"

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

type fixture struct {
	dir     string
	log     *ztlog.Log
	srv     *httptest.Server
	vkey    string
	entries [][]byte // by index
}

// newFixture serves a log holding n entries, published.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	skey, vkey, err := ztlog.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ztlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := posix.Open(ctx, posix.Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, log: l, vkey: vkey, entries: make([][]byte, n)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				e := []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("z", i%50)))
				idx, err := l.Append(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				f.entries[idx] = e
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n > 0 {
		if _, err := l.Await(ctx, uint64(n-1)); err != nil {
			t.Fatal(err)
		}
	}
	r := mux.NewRouter()
	Register(r, l)
	f.srv = httptest.NewServer(r)
	t.Cleanup(func() {
		f.srv.Close()
		l.Close(context.Background())
	})
	return f
}

// TestTLogTilesClient reads and verifies the whole log with Tessera's
// tlog-tiles client, given only the URL and the verifier key.
func TestTLogTilesClient(t *testing.T) {
	f := newFixture(t, 600)
	ctx := context.Background()
	u, _ := url.Parse(f.srv.URL + "/log/")
	fetcher, err := client.NewHTTPFetcher(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := client.FetchCheckpoint(ctx, fetcher.ReadCheckpoint, v, origin)
	if err != nil {
		t.Fatalf("checkpoint does not verify with the verifier key: %v", err)
	}
	if cp.Size != 600 {
		t.Fatalf("checkpoint size %d, want 600", cp.Size)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, fetcher.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for b := range (600 + 255) / 256 {
		bundle, err := client.GetEntryBundle(ctx, fetcher.ReadEntryBundle, uint64(b), cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bundle.Entries...)
	}
	if len(got) != 600 {
		t.Fatalf("entry bundles hold %d entries, want 600", len(got))
	}
	for i, e := range got {
		if !bytes.Equal(e, f.entries[i]) {
			t.Fatalf("entry %d over HTTP = %q, appended %q", i, e, f.entries[i])
		}
		p, err := pb.InclusionProof(ctx, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), cp.Size, rfc6962.DefaultHasher.HashLeaf(e), p, cp.Hash); err != nil {
			t.Fatalf("inclusion %d: %v", i, err)
		}
	}
	// The root recomputed from the hashes of every entry equals the checkpoint's.
	hashes, err := client.FetchLeafHashes(ctx, fetcher.ReadTile, 0, cp.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hashes {
		if !bytes.Equal(h, rfc6962.DefaultHasher.HashLeaf(got[i])) {
			t.Fatalf("level-0 tile hash %d does not match its entry", i)
		}
	}
}

// TestTilesAreByteExact compares every tile and bundle served with the bytes
// in storage, and checks content types and caching.
func TestTilesAreByteExact(t *testing.T) {
	f := newFixture(t, 300)
	cp, err := f.log.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{layout.TilePath(0, 0, 0), layout.TilePath(0, 1, layout.PartialTileSize(0, 1, cp.Size)),
		layout.TilePath(1, 0, layout.PartialTileSize(1, 0, cp.Size)),
		layout.EntriesPath(0, 0), layout.EntriesPath(1, layout.PartialTileSize(0, 1, cp.Size))}
	for _, p := range paths {
		resp, err := http.Get(f.srv.URL + "/log/" + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, err := os.ReadFile(filepath.Join(f.dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Errorf("%s: status %d, %d bytes; storage has %d bytes", p, resp.StatusCode, len(body), len(want))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q, want long-lived", p, cc)
		}
	}
	resp, err := http.Get(f.srv.URL + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(filepath.Join(f.dir, "checkpoint"))
	if !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("checkpoint: %q %q %q", body, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	// An entry bundle requested with gzip decodes to the same bytes.
	req, _ := http.NewRequest("GET", f.srv.URL+"/log/"+layout.EntriesPath(0, 0), nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("entry bundle not gzip-encoded when asked: %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	resp.Body.Close()
	want, _ = os.ReadFile(filepath.Join(f.dir, layout.EntriesPath(0, 0)))
	if !bytes.Equal(unzipped, want) {
		t.Fatal("gzip entry bundle differs from storage")
	}
}

func get(t *testing.T, u string, wantStatus int, into any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", u, resp.StatusCode, wantStatus, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", u, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}

func TestEntryEndpoint(t *testing.T) {
	f := newFixture(t, 40)
	cp, err := f.log.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{0, 1, 17, 39} {
		var r EntryResponse
		get(t, fmt.Sprintf("%s/v1/entries/%d", f.srv.URL, i), 200, &r)
		leaf, _ := base64.StdEncoding.DecodeString(r.Leaf)
		if !bytes.Equal(leaf, f.entries[i]) || r.Index != i || r.TreeSize != cp.Size {
			t.Fatalf("entry %d: %+v", i, r)
		}
		if r.LeafHash != base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(leaf)) {
			t.Fatalf("entry %d: leaf_hash %s is not the RFC 6962 hash of leaf", i, r.LeafHash)
		}
		if !bytes.Equal(r.Entry, leaf) {
			t.Fatalf("entry %d: entry %s differs from leaf %s", i, r.Entry, leaf)
		}
		// The tlog-proof verifies offline with the verifier key.
		tp, err := tlogproof.Parse([]byte(r.TLogProof))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := note.NewVerifier(f.vkey)
		n, err := note.Open(tp.Checkpoint, note.VerifierList(v))
		if err != nil {
			t.Fatalf("tlog-proof checkpoint: %v", err)
		}
		lines := strings.Split(n.Text, "\n")
		root, _ := base64.StdEncoding.DecodeString(lines[2])
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, tp.Index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), tp.Hashes, root); err != nil {
			t.Fatalf("tlog-proof for %d: %v", i, err)
		}
	}
	// ?size= an older tree: the proof verifies against that tree's root,
	// computed independently.
	var r EntryResponse
	get(t, f.srv.URL+"/v1/entries/3?size=10", 200, &r)
	if r.Checkpoint != "" || r.TreeSize != 10 {
		t.Fatalf("older size: checkpoint %q tree %d", r.Checkpoint, r.TreeSize)
	}
	hashes := make([][]byte, len(r.InclusionProof))
	for i, h := range r.InclusionProof {
		hashes[i], _ = base64.StdEncoding.DecodeString(h)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 3, 10, rfc6962.DefaultHasher.HashLeaf(f.entries[3]), hashes, root(f.entries[:10])); err != nil {
		t.Fatalf("proof for size 10: %v", err)
	}

	for _, c := range []struct {
		path   string
		status int
		code   string
		field  string
	}{
		{"/v1/entries/abc", 400, "bad_index", "index"},
		{"/v1/entries/-1", 400, "bad_index", "index"},
		{"/v1/entries/01", 400, "bad_index", "index"},
		{"/v1/entries/1.0", 400, "bad_index", "index"},
		{"/v1/entries/99999999999999999999999", 400, "bad_index", "index"},
		{"/v1/entries/40", 404, "not_found", "index"},
		{"/v1/entries/18446744073709551615", 404, "not_found", "index"},
		{"/v1/entries/3?size=x", 400, "bad_size", "size"},
		{"/v1/entries/3?size=3", 400, "bad_size", "size"},
		{"/v1/entries/3?size=41", 404, "not_found", "size"},
		{"/v1/proofs/consistency", 400, "missing_parameter", "old"},
		{"/v1/proofs/consistency?old=a", 400, "bad_old", "old"},
		{"/v1/proofs/consistency?old=5&new=b", 400, "bad_new", "new"},
		{"/v1/proofs/consistency?old=6&new=5", 400, "bad_size", "old"},
		{"/v1/proofs/consistency?old=5&new=41", 404, "not_found", "new"},
		{"/log/tile/0/1", 400, "bad_tile_path", "path"},
		{"/log/tile/00/000", 400, "bad_tile_path", "path"},
		{"/log/tile/0/000.p/0", 400, "bad_tile_path", "path"},
		{"/log/tile/0/x000/000", 400, "bad_tile_path", "path"},
		{"/log/tile/0/009", 404, "not_found", "path"},
		{"/log/tile/entries/000.p/256", 400, "bad_tile_path", "path"},
	} {
		var e httperr.Error
		get(t, f.srv.URL+c.path, c.status, &e)
		if e.Code != c.code || e.Field != c.field || e.Message == "" {
			t.Errorf("%s: got %+v, want code %s field %s", c.path, e, c.code, c.field)
		}
	}
}

func TestConsistencyEndpoint(t *testing.T) {
	f := newFixture(t, 300)
	for _, c := range [][2]uint64{{0, 300}, {1, 300}, {255, 257}, {100, 100}, {7, 300}} {
		var r ConsistencyResponse
		get(t, fmt.Sprintf("%s/v1/proofs/consistency?old=%d&new=%d", f.srv.URL, c[0], c[1]), 200, &r)
		hashes := make([][]byte, len(r.Proof))
		for i, h := range r.Proof {
			hashes[i], _ = base64.StdEncoding.DecodeString(h)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, c[0], c[1], hashes, root(f.entries[:c[0]]), root(f.entries[:c[1]])); err != nil {
			t.Fatalf("consistency %v: %v", c, err)
		}
		if (c[1] == 300) != (r.Checkpoint != "") {
			t.Fatalf("consistency %v: checkpoint present=%v", c, r.Checkpoint != "")
		}
	}
	var r ConsistencyResponse
	get(t, f.srv.URL+"/v1/proofs/consistency?old=10", 200, &r)
	if r.New != 300 {
		t.Fatalf("new defaults to the published size: got %d", r.New)
	}
}

// root is an independent RFC 6962 root computation.
func root(leaves [][]byte) []byte {
	h := rfc6962.DefaultHasher
	switch len(leaves) {
	case 0:
		return h.EmptyRoot()
	case 1:
		return h.HashLeaf(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return h.HashChildren(root(leaves[:k]), root(leaves[k:]))
}
