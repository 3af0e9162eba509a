package identity

import (
	"bytes"
	"net/http"
	"sync"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// RotatingTransport is an HTTP transport for a client that authenticates
// with the X.509-SVID of svid: once the SVID has rotated, no request goes
// out on a connection made with the previous one.
//
// A TLS client certificate is presented once per connection, and keep-alive
// keeps a busy connection open indefinitely; the contract's server checks
// the presented SVID's expiry on every request (identity.Authenticator), so
// a long-lived client that kept its first connection would be refused once
// that SVID expired, although the Workload API had long rotated it. Here
// every SVID gets a transport of its own (newTransport builds one): requests
// made after a rotation use a fresh transport, whose handshakes present the
// new SVID; requests already under way finish on the old one, whose idle
// connections are closed.
func RotatingTransport(svid x509svid.Source, newTransport func() *http.Transport) http.RoundTripper {
	return &rotatingTransport{svid: svid, newTransport: newTransport}
}

type rotatingTransport struct {
	svid         x509svid.Source
	newTransport func() *http.Transport
	mu           sync.Mutex
	leaf         []byte // DER of the SVID leaf that cur was made for
	cur          *http.Transport
}

func (t *rotatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.current().RoundTrip(req)
}

// current is the transport of the SVID in force now.
func (t *rotatingTransport) current() *http.Transport {
	var leaf []byte
	if s, err := t.svid.GetX509SVID(); err == nil && s != nil && len(s.Certificates) > 0 {
		leaf = s.Certificates[0].Raw
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur == nil || (leaf != nil && !bytes.Equal(leaf, t.leaf)) {
		if t.cur != nil {
			t.cur.CloseIdleConnections()
		}
		t.cur, t.leaf = t.newTransport(), leaf
	}
	return t.cur
}

// CloseIdleConnections closes the idle connections of the current transport.
func (t *rotatingTransport) CloseIdleConnections() {
	t.mu.Lock()
	cur := t.cur
	t.mu.Unlock()
	if cur != nil {
		cur.CloseIdleConnections()
	}
}
