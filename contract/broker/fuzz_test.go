package broker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/broker"
)

func FuzzDecodeWorkRequest(f *testing.F) {
	f.Add([]byte(`{"receipt":"a.b.c","action":"demo.echo","resource":"r","argv":["echo","hi"],"capabilities":{"v":1},"stdin":"aGkK"}`))
	f.Add([]byte(`{"receipt":"a.b.c","action":"demo.echo","resource":"r","argv":[],"capabilities":{}}`))
	f.Add([]byte(`{"receipt":"x","extra":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, stdin, e := broker.DecodeWorkRequest(body)
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		if req.Receipt == "" || req.Action == "" || req.Resource == "" || len(req.Argv) == 0 || len(req.Capabilities) == 0 {
			t.Fatalf("accepted an incomplete request: %+v", req)
		}
		for _, a := range req.Argv {
			if strings.IndexByte(a, 0) >= 0 {
				t.Fatal("accepted a NUL in argv")
			}
		}
		_ = stdin
	})
}

// FuzzReplayFile: whatever a replay file holds, opening it either fails
// with an error or yields a store that refuses the ids it holds.
func FuzzReplayFile(f *testing.F) {
	f.Add([]byte("cmlk 4102444800\n"))
	f.Add([]byte("cmlk 4102444800\nb3RoZXI 1\npartial"))
	f.Add([]byte("no-exp\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "replay")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1_700_000_000, 0)
		r, err := broker.OpenReplay(path, time.Second, now)
		if err != nil {
			return
		}
		defer r.Close()
		// "rid" (base64url "cmlk") expiring in 2100, when present, is remembered.
		if strings.HasPrefix(string(content), "cmlk 4102444800\n") {
			if err := r.Claim("rid", now.Add(time.Hour)); err == nil {
				t.Fatal("a remembered id was claimed again")
			}
		}
		if err := r.Claim("fresh-id-for-fuzz", now.Add(time.Hour)); err != nil {
			t.Fatalf("a fresh id: %v", err)
		}
	})
}
