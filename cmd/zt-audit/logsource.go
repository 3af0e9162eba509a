package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/policy"
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
			return nil, fmt.Errorf("--log %q: %v", spec, err)
		}
		hc := &http.Client{Timeout: 30 * time.Second}
		f, err := client.NewHTTPFetcher(u, hc)
		if err != nil {
			return nil, fmt.Errorf("--log %q: %v", spec, err)
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
		return nil, fmt.Errorf("--log %q: %v", spec, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--log %q is neither an http(s) URL nor a log directory", spec)
	}
	return client.FileFetcher{Root: spec}, nil
}

// loadPolicy reads the trust policy file.
func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, errors.New("--policy is required: the trust policy (C2SP tlog-policy) naming the log key and witnesses you trust")
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return p, nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
