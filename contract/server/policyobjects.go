package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/zt-infra/ztlog/contract/policysource"
	"github.com/zt-infra/ztlog/log/storage"
)

// ErrPolicyCorrupt: a stored policy source is not what its key names (the
// object was changed or damaged in the store). It is never served.
var ErrPolicyCorrupt = errors.New("stored policy source does not match its digest")

// ObjectPolicyStore is the policy store of the drivers with an object store
// (AWS: S3; GCP: GCS), shared by every frontend of the log. Under the log's
// prefix:
//
//	policies/<hex source digest>.json               the stored document (content-addressed)
//	policies/by-hash/<hex policy hash>/<hex digest>  a version with that hash and digest came into force (empty)
//	policies/by-hash/<hex policy hash>/latest         the source digest most recently put with that hash
//
// Put writes them in that order, before the policy entry is committed. Get
// reads through a cache of verified documents: every document read from the
// store is parsed and its source digest recomputed; one that does not match
// its key is refused with ErrPolicyCorrupt.
func ObjectPolicyStore(objs storage.Objects) PolicyStore {
	return &objectPolicyStore{objs: objs, verified: map[string][]byte{}}
}

type objectPolicyStore struct {
	objs storage.Objects
	mu   sync.Mutex
	// verified are documents read or written and checked, by digest.
	verified map[string][]byte
}

func policyDocKey(digest string) string { return "policies/" + hexOf(digest) + ".json" }
func policyPairKey(hash, digest string) string {
	return "policies/by-hash/" + hexOf(hash) + "/" + hexOf(digest)
}
func policyLatestKey(hash string) string { return "policies/by-hash/" + hexOf(hash) + "/latest" }

func (s *objectPolicyStore) Put(ctx context.Context, hash string, src *policysource.Source) error {
	if !digestRE.MatchString(hash) {
		return fmt.Errorf("policy store: hash %q is not a sha256: digest", hash)
	}
	doc, err := src.Marshal()
	if err != nil {
		return fmt.Errorf("policy store: %w", err)
	}
	digest := src.Digest()
	// A document already stored intact is left alone; a missing or
	// damaged one is (re)written.
	if _, err := s.document(ctx, digest); err != nil {
		if err := s.objs.Put(ctx, policyDocKey(digest), doc); err != nil {
			return fmt.Errorf("policy store: %w", err)
		}
	}
	if err := s.objs.Put(ctx, policyPairKey(hash, digest), nil); err != nil {
		return fmt.Errorf("policy store: %w", err)
	}
	if err := s.objs.Put(ctx, policyLatestKey(hash), []byte(digest+"\n")); err != nil {
		return fmt.Errorf("policy store: %w", err)
	}
	s.mu.Lock()
	s.verified[digest] = doc
	s.mu.Unlock()
	return nil
}

func (s *objectPolicyStore) Get(ctx context.Context, hash, sourceDigest string) ([]byte, error) {
	if !digestRE.MatchString(hash) || (sourceDigest != "" && !digestRE.MatchString(sourceDigest)) {
		return nil, ErrPolicyNotStored
	}
	if sourceDigest == "" {
		b, err := s.objs.Get(ctx, policyLatestKey(hash))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrPolicyNotStored
		}
		if err != nil {
			return nil, fmt.Errorf("policy store: %w", err)
		}
		sourceDigest = strings.TrimSpace(string(b))
		if !digestRE.MatchString(sourceDigest) {
			return nil, fmt.Errorf("policy store: %s names %q, not a source digest: %w", policyLatestKey(hash), sourceDigest, ErrPolicyCorrupt)
		}
	} else {
		_, err := s.objs.Get(ctx, policyPairKey(hash, sourceDigest))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrPolicyNotStored
		}
		if err != nil {
			return nil, fmt.Errorf("policy store: %w", err)
		}
	}
	return s.document(ctx, sourceDigest)
}

// document returns the stored document with digest, verified.
func (s *objectPolicyStore) document(ctx context.Context, digest string) ([]byte, error) {
	s.mu.Lock()
	doc, ok := s.verified[digest]
	s.mu.Unlock()
	if ok {
		return doc, nil
	}
	key := policyDocKey(digest)
	doc, err := s.objs.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("policy store: %s is missing although a version with source digest %s is recorded: %w", key, digest, ErrPolicyNotStored)
	}
	if err != nil {
		return nil, fmt.Errorf("policy store: %w", err)
	}
	src, err := policysource.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("policy store: %s is not a stored policy source (%v): %w", key, err, ErrPolicyCorrupt)
	}
	if got := src.Digest(); got != digest {
		return nil, fmt.Errorf("policy store: %s has source digest %s, not %s, the digest it is stored under: %w", key, got, digest, ErrPolicyCorrupt)
	}
	s.mu.Lock()
	s.verified[digest] = doc
	s.mu.Unlock()
	return doc, nil
}
