package client_test

import (
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/contracttest"
)

// The SDK refuses a service URL that is not https://: over plain HTTP
// nothing is authenticated (the answer, the issuer and the receipt JWKS
// would all come from whoever answers at that address), so a forger with
// its own receipt key would get a "verified" allow and GuardedCall would
// run the action.
func TestPlainHTTPServerRefused(t *testing.T) {
	s := contracttest.Start(t, contracttest.Options{})
	svid := s.SVID(contracttest.AgentID)
	for _, u := range []string{"http://127.0.0.1:1", "HTTP://127.0.0.1:1", "127.0.0.1:8443", "ftp://x"} {
		if _, err := client.New(client.Config{URL: u, SVID: svid, Bundles: s.Src}); err == nil || !strings.Contains(err.Error(), "https://") {
			t.Errorf("client.New(%q) = %v, want a refusal naming https://", u, err)
		}
	}
	if _, err := client.New(client.Config{URL: s.URL, SVID: svid, Bundles: s.Src}); err != nil {
		t.Fatalf("client.New(%q): %v", s.URL, err)
	}
}
