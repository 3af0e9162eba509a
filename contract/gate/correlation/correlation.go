// Package correlation carries the per-request context that every ztlog
// endpoint shares: the correlation id (X-Correlation-ID, accepted or
// generated, returned, committed, logged) and the attributes that the one
// structured log line of the request carries (caller SPIFFE ID, peer
// certificate serial, SVID expiry, decision, log index).
package correlation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
)

// Header is the correlation id header.
const Header = "X-Correlation-ID"

// MaxLen is the longest correlation id accepted.
const MaxLen = 128

var valid = regexp.MustCompile(`^[!-~]{1,128}$`)

// Valid reports whether s is an acceptable correlation id: 1 to 128
// printable ASCII characters without spaces.
func Valid(s string) bool { return valid.MatchString(s) }

// New returns a fresh correlation id (a random UUIDv4).
func New() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

type state struct {
	id      string
	invalid string // the header as received, when it was not acceptable
	mu      sync.Mutex
	attrs   []slog.Attr
}

type key struct{}

// Start gives the request its correlation id: the X-Correlation-ID header
// when it is acceptable, else a generated one (and Invalid reports the
// header). The id is set on the response header.
func Start(w http.ResponseWriter, r *http.Request) *http.Request {
	s := &state{}
	h := r.Header.Get(Header)
	switch {
	case h == "":
		s.id = New()
	case Valid(h):
		s.id = h
	default:
		s.id, s.invalid = New(), h
	}
	w.Header().Set(Header, s.id)
	return r.WithContext(context.WithValue(r.Context(), key{}, s))
}

// ID is the request's correlation id ("" outside a request).
func ID(ctx context.Context) string {
	if s, ok := ctx.Value(key{}).(*state); ok {
		return s.id
	}
	return ""
}

// Invalid returns the X-Correlation-ID header when it was present but not
// acceptable (the endpoint should refuse the request), else "".
func Invalid(ctx context.Context) string {
	if s, ok := ctx.Value(key{}).(*state); ok {
		return s.invalid
	}
	return ""
}

// SetID replaces the request's correlation id (when the body names one and
// no header did) and the response header with it.
func SetID(ctx context.Context, w http.ResponseWriter, id string) {
	if s, ok := ctx.Value(key{}).(*state); ok {
		s.id = id
		w.Header().Set(Header, id)
	}
}

// Annotate adds attributes to the request's log line.
func Annotate(ctx context.Context, attrs ...slog.Attr) {
	if s, ok := ctx.Value(key{}).(*state); ok {
		s.mu.Lock()
		s.attrs = append(s.attrs, attrs...)
		s.mu.Unlock()
	}
}

// Attrs returns the attributes added with Annotate.
func Attrs(ctx context.Context) []slog.Attr {
	if s, ok := ctx.Value(key{}).(*state); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		return append([]slog.Attr(nil), s.attrs...)
	}
	return nil
}
