package netguard

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Deadlines every server gets from Harden.
const (
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// BodyReadTimeout bounds reading a request's body, from the moment the
	// handler starts until the body's end.
	BodyReadTimeout = 30 * time.Second
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request.
	IdleTimeout = 30 * time.Second
)

// Harden sets srv's ReadHeaderTimeout and IdleTimeout where unset and puts
// BodyDeadline(BodyReadTimeout) in front of its handler. It does not set
// ReadTimeout: that would also cancel the context of a handler that runs
// longer (a long poll), which BodyDeadline does not.
func Harden(srv *http.Server) *http.Server { return HardenWith(srv, 0) }

// HardenWith is Harden with a body deadline of body (0: BodyReadTimeout).
func HardenWith(srv *http.Server, body time.Duration) *http.Server {
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = ReadHeaderTimeout
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = IdleTimeout
	}
	if body <= 0 {
		body = BodyReadTimeout
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = BodyDeadline(body, h)
	return srv
}

// BodyDeadline bounds how long reading a request body may take: when the
// request has a body, the connection's read deadline is set to now+d before
// next runs and cleared as soon as the body is read to its end or closed,
// so a slow response (a long poll, a stream) after that is unaffected. A
// client that trickles its body past d gets its read failed and the
// connection closed.
func BodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	io.ReadCloser
	clear func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.clear)
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.once.Do(b.clear)
	return b.ReadCloser.Close()
}
