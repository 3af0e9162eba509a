package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/contract/gate/replay"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// maxPolicyDocument bounds a served policy source: 32 MiB of files in
// base64, with room for the paths.
const maxPolicyDocument = 48 << 20

// openLog returns the log's tiles and where its policy sources are: for a
// URL, the server's GET /v1/policies/{hash}; for a POSIX log directory,
// DIR/policies (the layout policysource.md gives).
func openLog(spec string) (replay.Source, replay.Fetch, error) {
	if spec == "" {
		return nil, nil, errors.New("--log is required: the server's URL or a POSIX log directory")
	}
	if !strings.HasPrefix(spec, "http://") && !strings.HasPrefix(spec, "https://") {
		st, err := os.Stat(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("--log %q: %w", spec, err)
		}
		if !st.IsDir() {
			return nil, nil, fmt.Errorf("--log %q is neither an http(s) URL nor a log directory", spec)
		}
		fetch := func(_ context.Context, hash, digest string) ([]byte, error) {
			return os.ReadFile(filepath.Join(spec, "policies", strings.TrimPrefix(digest, "sha256:")+".json"))
		}
		return client.FileFetcher{Root: spec}, fetch, nil
	}
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(spec, "/"), "/log"))
	if err != nil {
		return nil, nil, fmt.Errorf("--log %q: %w", spec, err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	tiles, err := client.NewHTTPFetcher(u.JoinPath("log"), hc)
	if err != nil {
		return nil, nil, fmt.Errorf("--log %q: %w", spec, err)
	}
	fetch := func(ctx context.Context, hash, digest string) ([]byte, error) {
		pu := u.JoinPath("v1", "policies", hash)
		pu.RawQuery = url.Values{"source_digest": {digest}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pu.String(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := httperr.ReadBody(resp.Body, maxPolicyDocument)
		if err != nil {
			return nil, fmt.Errorf("GET %s: reading the policy source: %w", pu, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s: %s", pu, resp.Status, strings.TrimSpace(string(body)))
		}
		return body, nil
	}
	return tiles, fetch, nil
}
