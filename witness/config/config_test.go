package config

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/witness/cosigner"
	"golang.org/x/mod/sumdb/note"
)

func logKey(t testing.TB, origin string) string {
	t.Helper()
	_, v, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func witnessKey(t testing.TB, name string) string {
	t.Helper()
	_, v, err := cosigner.Generate(name, cosigner.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseFull(t *testing.T) {
	lk, pk, wk := logKey(t, "example.com/ztlog"), witnessKey(t, "w.partner.example/w1"), witnessKey(t, "w.example/w1")
	raw := fmt.Sprintf(`{
  "logs": [
    {"origin": "example.com/ztlog", "verifier_key": %q, "url": "https://example.com/log/",
     "federation": {"trust_domain": "example.com", "bundle_endpoint": "https://example.com/bundle", "server_spiffe_id": "spiffe://example.com/ztlog"}},
    {"origin": "other.example/log", "verifier_key": %q, "witness": false, "url": "http://127.0.0.1:1/log/"}
  ],
  "peers": [{"name": "p1", "verifier_key": %q, "url": "https://w.partner.example/"}],
  "federate": {"witness_url": "http://127.0.0.1:7380/", "witness_key": %q, "interval": "5s"}
}`, lk, logKey(t, "other.example/log"), pk, wk)
	c, err := Parse("test.json", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := c.Log("example.com/ztlog")
	if !ok || !l.Witnessed() || l.Verifier().Name() != "example.com/ztlog" || l.Federation.TrustDomain != "example.com" {
		t.Fatalf("log: %+v", l)
	}
	if o, _ := c.Log("other.example/log"); o.Witnessed() {
		t.Fatal(`"witness": false was ignored`)
	}
	if c.Peers[0].Verifier() == nil || c.Federate.Verifier() == nil || time.Duration(c.Federate.Interval) != 5*time.Second {
		t.Fatalf("peers/federate: %+v %+v", c.Peers[0], c.Federate)
	}
	if _, ok := c.Log("unknown"); ok {
		t.Fatal("unknown origin found")
	}
}

func TestParseRejects(t *testing.T) {
	lk := logKey(t, "example.com/ztlog")
	wk := witnessKey(t, "w")
	for name, tc := range map[string]struct{ raw, want string }{
		"not json":               {`logs: []`, "invalid character"},
		"unknown member":         {`{"logz": []}`, `unknown field "logz"`},
		"empty origin":           {fmt.Sprintf(`{"logs":[{"origin":"","verifier_key":%q}]}`, lk), "logs[0].origin"},
		"bad key":                {`{"logs":[{"origin":"example.com/ztlog","verifier_key":"nope"}]}`, "logs[0].verifier_key"},
		"key name":               {fmt.Sprintf(`{"logs":[{"origin":"example.com/other","verifier_key":%q}]}`, lk), "a log's key name is its origin"},
		"duplicate":              {fmt.Sprintf(`{"logs":[{"origin":"example.com/ztlog","verifier_key":%q},{"origin":"example.com/ztlog","verifier_key":%q}]}`, lk, lk), "listed twice"},
		"bad url":                {fmt.Sprintf(`{"logs":[{"origin":"example.com/ztlog","verifier_key":%q,"url":"ftp://x/"}]}`, lk), "logs[0].url"},
		"witness key as log key": {fmt.Sprintf(`{"logs":[{"origin":"w","verifier_key":%q}]}`, wk), "logs[0].verifier_key"},
		"federation over http":   {fmt.Sprintf(`{"logs":[{"origin":"example.com/ztlog","verifier_key":%q,"url":"http://x/","federation":{"trust_domain":"example.com","bundle_endpoint":"https://x/b"}}]}`, lk), "https:// url"},
		"bad trust domain":       {fmt.Sprintf(`{"logs":[{"origin":"example.com/ztlog","verifier_key":%q,"url":"https://x/","federation":{"trust_domain":"Ex Ample","bundle_endpoint":"https://x/b"}}]}`, lk), "trust_domain"},
		"server id elsewhere":    {fmt.Sprintf(`{"logs":[{"origin":"example.com/ztlog","verifier_key":%q,"url":"https://x/","federation":{"trust_domain":"example.com","bundle_endpoint":"https://x/b","server_spiffe_id":"spiffe://other.org/x"}}]}`, lk), "not in trust_domain"},
		"half https_spiffe":      {fmt.Sprintf(`{"logs":[{"origin":"example.com/ztlog","verifier_key":%q,"url":"https://x/","federation":{"trust_domain":"example.com","bundle_endpoint":"https://x/b","bundle_endpoint_spiffe_id":"spiffe://example.com/b"}}]}`, lk), "go together"},
		"peer log key":           {fmt.Sprintf(`{"logs":[],"peers":[{"name":"p","verifier_key":%q,"url":"http://x/"}]}`, "nope"), "peers[0].verifier_key"},
		"peer no name":           {fmt.Sprintf(`{"logs":[],"peers":[{"name":"","verifier_key":%q,"url":"http://x/"}]}`, wk), "peers[0].name"},
		"bad interval":           {fmt.Sprintf(`{"logs":[],"federate":{"witness_url":"http://x/","witness_key":%q,"interval":"-1s"}}`, wk), "positive duration"},
		"trailing":               {`{"logs":[]} {}`, "trailing data"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("c.json", []byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config c.json: ") {
				t.Fatalf("Parse: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWatcherReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.json")
	k1, k2 := logKey(t, "a.example/log"), logKey(t, "b.example/log")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`{"logs":[{"origin":"a.example/log","verifier_key":%q}]}`, k1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := Watch(ctx, path, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Current().Log("a.example/log"); !ok {
		t.Fatal("initial config not in force")
	}
	write(fmt.Sprintf(`{"logs":[{"origin":"b.example/log","verifier_key":%q}]}`, k2))
	waitFor(t, func() bool { _, ok := w.Current().Log("b.example/log"); return ok })
	if _, ok := w.Current().Log("a.example/log"); ok {
		t.Fatal("removed log still configured")
	}
	// An invalid file is ignored, and the error is reported.
	write(`{"logs": [`)
	waitFor(t, func() bool { return w.Err() != nil })
	if _, ok := w.Current().Log("b.example/log"); !ok {
		t.Fatal("an invalid file replaced the configuration")
	}
	write(fmt.Sprintf(`{"logs":[{"origin":"a.example/log","verifier_key":%q}]}`, k1))
	waitFor(t, func() bool { _, ok := w.Current().Log("a.example/log"); return ok && w.Err() == nil })
	if _, err := Watch(ctx, filepath.Join(dir, "missing.json"), 0, nil); err == nil {
		t.Fatal("Watch of a missing file succeeded")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"logs":[{"origin":"example.com/ztlog","verifier_key":"example.com/ztlog+0f8a2cbb+AeI3B4vZ0LsbH1m8gYc1cX0lM4aU6dH9mM4z2G4T+q3y","url":"https://example.com/log/"}],"peers":[],"federate":{"witness_url":"http://127.0.0.1:1/","witness_key":"w+00000000+BA==","interval":"1s"}}`))
	f.Add([]byte(`{"logs":[]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse("fuzz", raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config fuzz: ") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, l := range c.Logs {
			if l.Verifier() == nil || l.Verifier().Name() != l.Origin {
				t.Fatalf("accepted a log without a matching verifier: %+v", l)
			}
			if got, ok := c.Log(l.Origin); !ok || got != l {
				t.Fatal("log not indexed by origin")
			}
		}
	})
}
