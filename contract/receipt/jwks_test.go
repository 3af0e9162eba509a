package receipt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/internal/httperr"
)

// paddedJWKS is a valid one-key JWKS, padded with trailing spaces (still
// valid JSON) to exactly size bytes: a cut read of it would parse.
func paddedJWKS(t *testing.T, size int) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return append(raw, bytes.Repeat([]byte(" "), size-len(raw))...)
}

// serveBody answers every request with body, on 127.0.0.1.
func serveBody(t *testing.T, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPKeysReadsAJWKSOfExactlyTheLimit(t *testing.T) {
	srv := serveBody(t, paddedJWKS(t, maxDocument))
	set, err := (&HTTPKeys{Client: srv.Client(), URL: srv.URL + "/v1/receipts/jwks.json"}).Keys(context.Background(), false)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(set.Keys) != 1 {
		t.Errorf("Keys gave %d keys, want 1", len(set.Keys))
	}
}

func TestHTTPKeysRefusesAJWKSOverTheLimit(t *testing.T) {
	srv := serveBody(t, paddedJWKS(t, maxDocument+1))
	url := srv.URL + "/v1/receipts/jwks.json"
	_, err := (&HTTPKeys{Client: srv.Client(), URL: url}).Keys(context.Background(), false)
	var tl *httperr.TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("Keys of a %d-byte JWKS: err = %v, want a *httperr.TooLargeError", maxDocument+1, err)
	}
	if tl.Limit != maxDocument {
		t.Errorf("TooLargeError.Limit = %d, want %d", tl.Limit, maxDocument)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error %q does not name the JWKS URL %s", err, url)
	}
}

func TestFetchServiceInfoRefusesAnAnswerOverTheLimit(t *testing.T) {
	doc := []byte(`{"origin":"log.example/ztlog"}`)
	srv := serveBody(t, append(doc, bytes.Repeat([]byte(" "), maxDocument+1-len(doc))...))
	_, err := FetchServiceInfo(context.Background(), srv.Client(), srv.URL)
	var tl *httperr.TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("FetchServiceInfo of a %d-byte document: err = %v, want a *httperr.TooLargeError", maxDocument+1, err)
	}
	if want := srv.URL + "/.well-known/ztlog"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
}
