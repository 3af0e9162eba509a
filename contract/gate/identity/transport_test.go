package identity_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/devca"
)

// swappable is an x509svid.Source whose SVID the test replaces, as the
// Workload API does on rotation.
type swappable struct {
	mu   sync.Mutex
	svid *x509svid.SVID
}

func (s *swappable) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}

func (s *swappable) set(svid *x509svid.SVID) {
	s.mu.Lock()
	s.svid = svid
	s.mu.Unlock()
}

// TestRotatingTransportPresentsTheNewSVID: a keep-alive client keeps
// presenting its first SVID on a plain transport, even after it expired,
// and the server refuses it; through RotatingTransport the request after a
// rotation presents the new SVID.
func TestRotatingTransportPresentsTheNewSVID(t *testing.T) {
	ca, _ := devca.New(td)
	f := newFixture(t, fileSource(t, ca), ca)
	first, err := ca.IssueX509SVID(agentID, devca.SVIDOptions{NotBefore: time.Now(), TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	second, err := ca.IssueX509SVID(agentID, devca.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serialOf := func(s *x509svid.SVID) string { return fmt.Sprintf("%x", s.Certificates[0].SerialNumber) }
	get := func(c *http.Client) (int, string) {
		t.Helper()
		resp, err := c.Get(f.url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out["serial"]
	}
	newTransport := func(src x509svid.Source) func() *http.Transport {
		return func() *http.Transport {
			return &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(src, f.src, tlsconfig.AuthorizeID(serverID))}
		}
	}

	plainSrc, rotSrc := &swappable{svid: first}, &swappable{svid: first}
	plain := &http.Client{Transport: newTransport(plainSrc)(), Timeout: 5 * time.Second}
	rotating := &http.Client{Transport: identity.RotatingTransport(rotSrc, newTransport(rotSrc)), Timeout: 5 * time.Second}
	if _, got := get(plain); got != serialOf(first) {
		t.Fatalf("plain transport presents %s, want the first SVID %s", got, serialOf(first))
	}
	if _, got := get(rotating); got != serialOf(first) {
		t.Fatalf("rotating transport presents %s, want the first SVID %s", got, serialOf(first))
	}
	plainSrc.set(second)
	rotSrc.set(second)
	if _, got := get(rotating); got != serialOf(second) {
		t.Errorf("after the rotation the rotating transport presents %s, want the new SVID %s", got, serialOf(second))
	}
	// The plain transport's kept connection still carries the first SVID;
	// once that has expired, the server refuses it.
	time.Sleep(time.Until(first.Certificates[0].NotAfter.Add(1100 * time.Millisecond)))
	if code, _ := get(plain); code != http.StatusUnauthorized {
		t.Errorf("plain keep-alive connection with the expired first SVID: HTTP %d, want 401 (the failure RotatingTransport avoids)", code)
	}
	if code, got := get(rotating); code != http.StatusOK || got != serialOf(second) {
		t.Errorf("rotating transport after the first SVID expired: HTTP %d serial %s, want 200 with %s", code, got, serialOf(second))
	}
}
