package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/zt-infra/ztlog/contract/policysource"
)

func policyServer(t *testing.T, st PolicyStore) *httptest.Server {
	s := &Service{cfg: Config{PolicyStore: st}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r := mux.NewRouter()
	r.HandleFunc("/v1/policies/{hash}", s.servePolicy)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestPolicyStoreServes: a stored source is served by its hash (the one
// with that hash most recently in force) and by hash and source digest, survives a new store over
// the same directory, and an unknown hash is a 404 naming it.
func TestPolicyStoreServes(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	hash := "sha256:" + strings.Repeat("ab", 32)
	v1 := &policysource.Source{Engine: "opa", Files: map[string][]byte{"a.rego": []byte("package a\n")}}
	v2 := &policysource.Source{Engine: "opa", Files: map[string][]byte{"a.rego": []byte("package a\n# a comment\n")}}
	st := DirPolicyStore(dir)
	for _, src := range []*policysource.Source{v1, v2, v1} {
		if err := st.Put(ctx, hash, src); err != nil {
			t.Fatal(err)
		}
	}
	srv := policyServer(t, DirPolicyStore(dir)) // a restarted service
	status, body := get(t, srv.URL+"/v1/policies/"+hash)
	if status != http.StatusOK {
		t.Fatalf("GET by hash: %d %s", status, body)
	}
	got, err := policysource.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != v1.Digest() {
		t.Errorf("GET by hash served %s, want the one most recently in force, %s", got.Digest(), v1.Digest())
	}
	status, body = get(t, srv.URL+"/v1/policies/"+hash+"?source_digest="+v2.Digest())
	if status != http.StatusOK {
		t.Fatalf("GET by hash and digest: %d %s", status, body)
	}
	if got, _ := policysource.Parse(body); got == nil || got.Digest() != v2.Digest() {
		t.Errorf("GET by hash and digest did not serve %s", v2.Digest())
	}
	unknown := "sha256:" + strings.Repeat("cd", 32)
	status, body = get(t, srv.URL+"/v1/policies/"+unknown)
	if status != http.StatusNotFound {
		t.Errorf("unknown hash: status %d, want 404", status)
	}
	var e struct{ Code, Message string }
	json.Unmarshal(body, &e)
	if !strings.Contains(e.Message, unknown) {
		t.Errorf("404 message %q does not name the hash %s", e.Message, unknown)
	}
	status, _ = get(t, srv.URL+"/v1/policies/sha256:nothex")
	if status != http.StatusBadRequest {
		t.Errorf("malformed hash: status %d, want 400", status)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 3 { // two documents and by-hash
		t.Errorf("store directory holds %d entries, want 3 (two sources, by-hash)", len(files))
	}
	if _, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(v1.Digest(), "sha256:")+".json")); err != nil {
		t.Errorf("source not stored under its digest: %v", err)
	}
}

// TestPolicyStoreAbsent: without a store the endpoint says so.
func TestPolicyStoreAbsent(t *testing.T) {
	srv := policyServer(t, nil)
	hash := "sha256:" + strings.Repeat("ab", 32)
	status, body := get(t, srv.URL+"/v1/policies/"+hash)
	if status != http.StatusNotFound {
		t.Errorf("status %d, want 404", status)
	}
	if !strings.Contains(string(body), "stores no policy sources") {
		t.Errorf("body %s does not say that no sources are stored", body)
	}
}
