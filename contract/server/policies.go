package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/policysource"
	"github.com/zt-infra/ztlog/internal/fsx"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// PolicyStore keeps the source of every policy version that comes into
// force (contract/policysource/policysource.md), for GET
// /v1/policies/{hash}.
type PolicyStore interface {
	// Put stores src, the source of a version with policy hash hash. It
	// returns only once the source is durable; storing a source twice is
	// not an error.
	Put(ctx context.Context, hash string, src *policysource.Source) error
	// Get returns the stored document of the version with policy hash hash
	// and source digest sourceDigest (""; the version most recently in force
	// with that hash), or ErrPolicyNotStored.
	Get(ctx context.Context, hash, sourceDigest string) ([]byte, error)
}

// ErrPolicyNotStored: no stored policy source has that hash (and digest).
var ErrPolicyNotStored = errors.New("no stored policy source")

// DirPolicyStore is the POSIX policy store: dir/<hex source digest>.json
// (the stored document) and dir/by-hash/<hex policy hash> (the source
// digests with that hash, one a line, the one most recently in force last), each written
// atomically and fsynced.
func DirPolicyStore(dir string) PolicyStore { return &dirPolicyStore{dir: dir} }

type dirPolicyStore struct {
	dir string
	mu  sync.Mutex
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (s *dirPolicyStore) Put(_ context.Context, hash string, src *policysource.Source) error {
	if !digestRE.MatchString(hash) {
		return fmt.Errorf("policy store: hash %q is not a sha256: digest", hash)
	}
	doc, err := src.Marshal()
	if err != nil {
		return fmt.Errorf("policy store: %w", err)
	}
	digest := src.Digest()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(s.dir, "by-hash"), 0o755); err != nil {
		return fmt.Errorf("policy store: %w", err)
	}
	file := filepath.Join(s.dir, hexOf(digest)+".json")
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		if err := fsx.WriteAtomic(file, doc, 0o644); err != nil {
			return fmt.Errorf("policy store: %w", err)
		}
	}
	index := filepath.Join(s.dir, "by-hash", hexOf(hash))
	list, err := readList(index)
	if err != nil {
		return fmt.Errorf("policy store: %w", err)
	}
	if len(list) > 0 && list[len(list)-1] == digest {
		return nil
	}
	// Latest last: a version that comes into force again moves to the end.
	list = append(slices.DeleteFunc(list, func(d string) bool { return d == digest }), digest)
	return fsx.WriteAtomic(index, []byte(strings.Join(list, "\n")+"\n"), 0o644)
}

func (s *dirPolicyStore) Get(_ context.Context, hash, sourceDigest string) ([]byte, error) {
	if !digestRE.MatchString(hash) || (sourceDigest != "" && !digestRE.MatchString(sourceDigest)) {
		return nil, ErrPolicyNotStored
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := readList(filepath.Join(s.dir, "by-hash", hexOf(hash)))
	if err != nil {
		return nil, err
	}
	want := sourceDigest
	if want == "" && len(list) > 0 {
		want = list[len(list)-1]
	}
	for _, d := range list {
		if d == want {
			return os.ReadFile(filepath.Join(s.dir, hexOf(d)+".json"))
		}
	}
	return nil, ErrPolicyNotStored
}

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// readList reads an index file's lines (none when it does not exist).
func readList(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// storingCommit stores each version's source before its policy entry is
// committed: a version whose source cannot be stored does not come into
// force.
func storingCommit(store PolicyStore, commit pdp.CommitFunc) pdp.CommitFunc {
	return func(ctx context.Context, v pdp.Version, loadedBy string) (uint64, error) {
		if v.Content == nil {
			return 0, fmt.Errorf("policy %s: its source files were not kept, so they cannot be stored", v.Hash)
		}
		if err := store.Put(ctx, v.Hash, v.Content); err != nil {
			return 0, fmt.Errorf("store the source of policy %s: %w", v.Hash, err)
		}
		return commit(ctx, v, loadedBy)
	}
}

// servePolicy is GET /v1/policies/{hash}[?source_digest=D]: the stored
// source of a policy version (policysource.md).
func (s *Service) servePolicy(w http.ResponseWriter, r *http.Request) {
	hash := mux.Vars(r)["hash"]
	digest := r.URL.Query().Get("source_digest")
	if !digestRE.MatchString(hash) {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "invalid_hash", Field: "hash",
			Message: fmt.Sprintf("policy hash %q: want sha256: and 64 lowercase hex digits, as decision entries carry it", hash)})
		return
	}
	if digest != "" && !digestRE.MatchString(digest) {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "invalid_source_digest", Field: "source_digest",
			Message: fmt.Sprintf("source_digest %q: want sha256: and 64 lowercase hex digits, as policy entries carry it", digest)})
		return
	}
	if s.cfg.PolicyStore == nil {
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "policy_not_stored", Field: "hash",
			Message: fmt.Sprintf("policy %s: this service stores no policy sources (its storage driver has no policy store)", hash)})
		return
	}
	doc, err := s.cfg.PolicyStore.Get(r.Context(), hash, digest)
	switch {
	case errors.Is(err, ErrPolicyNotStored):
		what := "policy " + hash
		if digest != "" {
			what += " with source digest " + digest
		}
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "policy_not_stored", Field: "hash",
			Message: what + " is not stored here: no version with it came into force on this service since policies were stored"})
		return
	case errors.Is(err, ErrPolicyCorrupt):
		s.logger.Error("stored policy source refused", "hash", hash, "error", err.Error())
		httperr.WriteError(w, http.StatusInternalServerError, &httperr.Error{Code: "policy_source_corrupt", Field: "hash",
			Message: fmt.Sprintf("policy %s: the stored source was changed or damaged in the policy store and is not served (%v); the operator must restore the object (storing that version again rewrites it)", hash, err)})
		return
	case err != nil:
		s.logger.Error("policy store read failed", "hash", hash, "error", err.Error())
		httperr.WriteError(w, http.StatusInternalServerError, &httperr.Error{Code: "policy_store_error", Message: "the policy store could not be read"})
		return
	}
	if digest != "" {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(doc)
}
