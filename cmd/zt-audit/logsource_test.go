package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A hostile log server cannot make the auditor buffer an unbounded
// response: a body longer than the largest tlog-tiles resource fails, with
// or without a Content-Length; a body of exactly the limit is read.
func TestLogResponsesAreBounded(t *testing.T) {
	for _, c := range []struct {
		name    string
		size    int
		chunked bool
		ok      bool
	}{
		{"at the limit", maxLogResponse, false, true},
		{"over, with a length", maxLogResponse + 1, false, false},
		{"over, chunked", maxLogResponse + 1, true, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body := strings.Repeat("x", c.size)
			if c.chunked {
				w.Write([]byte(body[:10]))
				w.(http.Flusher).Flush() // no Content-Length: chunked
				w.Write([]byte(body[10:]))
				return
			}
			w.Write([]byte(body))
		}))
		f, err := openLog(context.Background(), srv.URL+"/log/")
		if err != nil {
			t.Fatalf("%s: openLog: %v", c.name, err)
		}
		raw, err := f.ReadCheckpoint(context.Background())
		srv.Close()
		switch {
		case c.ok && (err != nil || len(raw) != c.size):
			t.Errorf("%s: read %d bytes, %v; want all %d", c.name, len(raw), err, c.size)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "longer than any tlog-tiles resource") && !strings.Contains(err.Error(), "more than any tlog-tiles resource")):
			t.Errorf("%s: read %d bytes, %v; want a refusal naming the limit", c.name, len(raw), err)
		}
	}
}
