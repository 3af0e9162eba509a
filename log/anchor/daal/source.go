package daal

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/client"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// OpenSource reads a log at an http(s) URL (the log's tlog-tiles root, e.g.
// http://127.0.0.1:8443/log/) or in a POSIX storage directory.
func OpenSource(loc string) (vdaal.Source, error) {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		if !strings.HasSuffix(loc, "/") {
			loc += "/"
		}
		u, err := url.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("log URL %q: %w", loc, err)
		}
		return client.NewHTTPFetcher(u, &http.Client{Timeout: 30 * time.Second})
	}
	if loc == "" {
		return nil, errors.New("no log given: pass the log's URL (http://host/log/) or its storage directory")
	}
	return client.FileFetcher{Root: loc}, nil
}
