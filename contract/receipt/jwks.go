// JWKS sources: the issuer's receipt keys, fixed or fetched over an
// authenticated connection.

package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeySource gives the issuer's receipt JWKS. refresh asks for a fresh copy
// (after a receipt named an unknown key).
type KeySource interface {
	Keys(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error)
}

// StaticKeys is a fixed JWKS (configured, or read from a file).
type StaticKeys struct{ Set *jose.JSONWebKeySet }

// Keys returns the set.
func (s StaticKeys) Keys(context.Context, bool) (*jose.JSONWebKeySet, error) {
	if s.Set == nil {
		return nil, errors.New("no receipt keys configured")
	}
	return s.Set, nil
}

// ParseJWKS reads a JWKS document, keeping only public signing keys.
func ParseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("receipt JWKS: %w", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("receipt JWKS: key %q is private; a JWKS publishes public keys", k.KeyID)
		}
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("receipt JWKS: no keys")
	}
	return &set, nil
}

// HTTPKeys fetches the JWKS from the issuer (GET /v1/receipts/jwks.json,
// over a TLS client that authenticates the server) and caches it; a
// refresh is honoured at most every MinRefresh (default 10s), so a flood of
// receipts naming unknown keys cannot turn into a flood of fetches.
type HTTPKeys struct {
	Client     *http.Client
	URL        string
	MinRefresh time.Duration

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
}

// Keys returns the cached set, fetching it when there is none or when a
// refresh is asked for and allowed.
func (h *HTTPKeys) Keys(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	min := h.MinRefresh
	if min <= 0 {
		min = 10 * time.Second
	}
	if h.set != nil && (!refresh || time.Since(h.fetched) < min) {
		return h.set, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		if h.set != nil {
			return h.set, nil
		}
		return nil, fmt.Errorf("fetching receipt keys from %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		if h.set != nil {
			return h.set, nil
		}
		return nil, fmt.Errorf("fetching receipt keys from %s: HTTP %d %v", h.URL, resp.StatusCode, err)
	}
	set, err := ParseJWKS(b)
	if err != nil {
		return nil, err
	}
	h.set, h.fetched = set, time.Now()
	return set, nil
}

// FetchIssuer reads the receipt issuer (the log origin) from the service at
// baseURL (GET /.well-known/ztlog), over hc, a client that authenticates
// the server.
func FetchIssuer(ctx context.Context, hc *http.Client, baseURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/.well-known/ztlog", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("reading the issuer from %s/.well-known/ztlog: %w", baseURL, err)
	}
	defer resp.Body.Close()
	var wk struct {
		Origin string `json:"origin"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&wk); err != nil {
		return "", fmt.Errorf("reading the issuer from %s/.well-known/ztlog: HTTP %d: %w", baseURL, resp.StatusCode, err)
	}
	if wk.Origin == "" {
		return "", fmt.Errorf("reading the issuer from %s/.well-known/ztlog: HTTP %d, no origin", baseURL, resp.StatusCode)
	}
	return wk.Origin, nil
}
