package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/audit"
)

// openLog returns the log named by --log: an http(s) URL of its
// tlog-tiles prefix (for ztlog, <base>/log/; the server's base URL is
// accepted too), or a POSIX log directory (ztlog's <data-dir>/log).
func openLog(ctx context.Context, spec string) (audit.Source, error) {
	if spec == "" {
		return nil, errors.New("--log is required: the log's URL (https://host/log/) or its directory")
	}
	if strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://") {
		u, err := url.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("--log %q: %w", spec, err)
		}
		hc := &http.Client{Timeout: 30 * time.Second, Transport: boundedTransport{http.DefaultTransport}}
		f, err := client.NewHTTPFetcher(u, hc)
		if err != nil {
			return nil, fmt.Errorf("--log %q: %w", spec, err)
		}
		if _, err := f.ReadCheckpoint(ctx); err != nil && !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/log") {
			// A ztlog server's base URL: its tiles are under /log/.
			alt := u.JoinPath("log") // NewHTTPFetcher added the trailing slash
			if g, err := client.NewHTTPFetcher(alt, hc); err == nil {
				if _, err := g.ReadCheckpoint(ctx); err == nil {
					return g, nil
				}
			}
		}
		return f, nil
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("--log %q: %w", spec, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--log %q is neither an http(s) URL nor a log directory", spec)
	}
	return client.FileFetcher{Root: spec}, nil
}

// loadPolicy reads the trust policy file.
func loadPolicy(path string) (*trustpolicy.Policy, error) {
	if path == "" {
		return nil, errors.New("--policy is required: the trust policy (C2SP tlog-policy) naming the log key and witnesses you trust")
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := trustpolicy.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// maxLogResponse bounds one response from a log: the largest tlog-tiles
// resource is a full entry bundle, 256 entries of at most 65,535 bytes
// each with a 2-byte length. A hostile server cannot make the auditor
// buffer more than this per request.
const maxLogResponse = 256 * (2 + 65535)

// boundedTransport fails a response whose body is longer than
// maxLogResponse, instead of reading it whole.
type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxLogResponse {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: the response is %d bytes, more than any tlog-tiles resource (%d)", req.URL, resp.ContentLength, maxLogResponse)
	}
	resp.Body = &boundedBody{rc: resp.Body, left: maxLogResponse, url: req.URL.String()}
	return resp, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
	url  string
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe for one more byte: exactly the limit is allowed.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%s: the response is longer than any tlog-tiles resource (%d bytes)", b.url, maxLogResponse)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }
