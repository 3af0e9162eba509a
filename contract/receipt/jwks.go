// JWKS sources: the issuer's receipt keys, fixed or fetched over an
// authenticated connection.

package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/internal/httperr"
)

// maxDocument is the most read of a fetched JWKS or /.well-known/ztlog
// document (1 MiB); a longer answer is an error, not a cut prefix.
const maxDocument = 1 << 20

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
	b, err := httperr.ReadBody(resp.Body, maxDocument)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		if h.set != nil {
			return h.set, nil
		}
		return nil, fmt.Errorf("fetching receipt keys from %s: %w", h.URL, err)
	}
	set, err := ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("fetching receipt keys from %s: %w", h.URL, err)
	}
	h.set, h.fetched = set, time.Now()
	return set, nil
}

// ServiceInfo is what a client reads from a service's /.well-known/ztlog:
// the receipt issuer (the log's origin) and the broker a request that names
// none is decided for.
type ServiceInfo struct {
	Origin        string `json:"origin"`
	DefaultBroker string `json:"default_broker"`
}

// FetchServiceInfo reads baseURL's /.well-known/ztlog with hc (the
// authenticated client: the issuer and keys a receipt is checked with are
// only as trustworthy as the connection they came over).
func FetchServiceInfo(ctx context.Context, hc *http.Client, baseURL string) (*ServiceInfo, error) {
	where := strings.TrimSuffix(baseURL, "/") + "/.well-known/ztlog"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	defer resp.Body.Close()
	b, err := httperr.ReadBody(resp.Body, maxDocument)
	if err != nil {
		return nil, fmt.Errorf("reading %s: HTTP %d: %w", where, resp.StatusCode, err)
	}
	var wk ServiceInfo
	if err := json.Unmarshal(b, &wk); err != nil {
		return nil, fmt.Errorf("reading %s: HTTP %d: %w", where, resp.StatusCode, err)
	}
	if wk.Origin == "" {
		return nil, fmt.Errorf("reading %s: HTTP %d, no origin", where, resp.StatusCode)
	}
	return &wk, nil
}
