package explorer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// OfflineConfig is what `zt-audit explore` serves.
type OfflineConfig struct {
	// Log is the log to explore: the http(s) base URL of a ztlog server
	// (its tlog-tiles prefix <base>/log/ is accepted too), or a POSIX log
	// directory (ztlog's <data-dir>/log, with policy sources in its
	// policies/ directory).
	Log string
	// TrustPolicy is the auditor's trust policy text; TrustSource its file
	// name, shown by the page.
	TrustPolicy []byte
	TrustSource string
	// HTTPClient reaches a log given by URL (default: 30s timeout).
	HTTPClient *http.Client
}

// Offline returns the handler of `zt-audit explore`: the page under /ui/
// with the auditor's trust policy, and the log's read API at the paths the
// page reads (/log/..., /v1/policies/{hash}, /v1/history, /.well-known/ztlog):
// proxied to the server for a URL, read from the files for a directory.
func Offline(ctx context.Context, cfg OfflineConfig) (http.Handler, error) {
	if len(cfg.TrustPolicy) == 0 {
		return nil, errors.New("explorer: no trust policy: the page verifies the log against the auditor's trust policy")
	}
	var (
		read Reader
		api  http.Handler
	)
	switch {
	case strings.HasPrefix(cfg.Log, "http://") || strings.HasPrefix(cfg.Log, "https://"):
		base, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(cfg.Log, "/"), "/log"))
		if err != nil {
			return nil, fmt.Errorf("explorer: log URL %q: %w", cfg.Log, err)
		}
		hc := cfg.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 30 * time.Second}
		}
		f, err := client.NewHTTPFetcher(base.JoinPath("log"), hc)
		if err != nil {
			return nil, fmt.Errorf("explorer: log URL %q: %w", cfg.Log, err)
		}
		if _, err := f.ReadCheckpoint(ctx); err != nil {
			return nil, fmt.Errorf("explorer: no checkpoint at %s: %w (give the server's base URL or its /log/ prefix)", base.JoinPath("log", "checkpoint"), err)
		}
		read, api = f, proxy(base, hc)
	default:
		st, err := os.Stat(cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("explorer: log %q: %w", cfg.Log, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("explorer: log %q is neither an http(s) URL nor a log directory", cfg.Log)
		}
		if _, err := os.Stat(filepath.Join(cfg.Log, layout.CheckpointPath)); err != nil {
			return nil, fmt.Errorf("explorer: %q holds no checkpoint; give ztlog's <data-dir>/log: %w", cfg.Log, err)
		}
		d := dirLog{root: cfg.Log}
		read, api = d, d.handler()
	}
	ui := Handler(Config{Log: read, TrustPolicy: cfg.TrustPolicy, TrustSource: cfg.TrustSource, Mode: "explore"})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			http.Redirect(w, r, "/ui/", http.StatusFound)
		case r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/"):
			ui.ServeHTTP(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", "the explorer only reads the log")
		default:
			api.ServeHTTP(w, r)
		}
	}), nil
}

// proxy forwards the read API to the log's server.
func proxy(base *url.URL, hc *http.Client) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(base)
			r.Out.Host = base.Host
		},
		Transport: hc.Transport,
		// The log's bytes are data for the page, never a document of the
		// explorer's origin: a hostile server's HTML would not run.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Content-Security-Policy", "default-src 'none'; sandbox")
			resp.Header.Set("X-Content-Type-Options", "nosniff")
			return nil
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !readPath(r.URL.Path) {
			writeError(w, http.StatusNotFound, "no_such_endpoint", "path", "the explorer serves the log's read API only, not "+r.URL.Path)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// readPath reports whether path is one of the read API paths the page uses.
func readPath(path string) bool {
	for _, p := range []string{"/log/", "/v1/policies/", "/v1/entries/", "/v1/history"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return path == "/.well-known/ztlog"
}

// dirLog reads a POSIX log directory: Tessera's layout (checkpoint,
// tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>]) and ztlog's policy store
// (policies/<hex source digest>.json, policies/by-hash/<hex policy hash>).
type dirLog struct{ root string }

func (d dirLog) ReadCheckpoint(context.Context) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.root, layout.CheckpointPath))
}

func (d dirLog) ReadEntryBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	return d.resource(layout.EntriesPath(index, p), index, p, true)
}

// resource reads a tile or entry bundle. A partial one the log has since
// completed (and removed) is cut from the full one: tiles and bundles only
// grow by appending.
func (d dirLog) resource(path string, index uint64, p uint8, entries bool) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(path)))
	if err == nil || p == 0 || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	full := strings.TrimSuffix(path, fmt.Sprintf(".p/%d", p))
	b, err = os.ReadFile(filepath.Join(d.root, filepath.FromSlash(full)))
	if err != nil {
		return nil, err
	}
	if !entries {
		if len(b) < int(p)*32 {
			return nil, fmt.Errorf("%s is %d bytes, shorter than %d hashes", full, len(b), p)
		}
		return b[:int(p)*32], nil
	}
	var eb api.EntryBundle
	if err := eb.UnmarshalText(b); err != nil || len(eb.Entries) < int(p) {
		return nil, fmt.Errorf("%s does not hold %d entries", full, p)
	}
	var out bytes.Buffer
	for _, e := range eb.Entries[:p] {
		out.Write([]byte{byte(len(e) >> 8), byte(len(e))})
		out.Write(e)
	}
	return out.Bytes(), nil
}

var policyHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (d dirLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/log/checkpoint":
			d.serve(w, "text/plain; charset=utf-8", "no-cache", func() ([]byte, error) { return d.ReadCheckpoint(r.Context()) })
		case strings.HasPrefix(p, "/log/tile/entries/"):
			n, w8, err := layout.ParseTileIndexPartial(strings.TrimPrefix(p, "/log/tile/entries/"))
			if err != nil || "/log/"+layout.EntriesPath(n, w8) != p {
				writeError(w, http.StatusBadRequest, "bad_tile_path", "path", fmt.Sprintf("%s is not a tlog-tiles entry bundle path", p))
				return
			}
			d.serve(w, "application/octet-stream", "no-cache", func() ([]byte, error) { return d.resource(layout.EntriesPath(n, w8), n, w8, true) })
		case strings.HasPrefix(p, "/log/tile/"):
			rest := strings.TrimPrefix(p, "/log/tile/")
			level, index, _ := strings.Cut(rest, "/")
			l, n, w8, err := layout.ParseTileLevelIndexPartial(level, index)
			if err != nil || "/log/"+layout.TilePath(l, n, w8) != p {
				writeError(w, http.StatusBadRequest, "bad_tile_path", "path", fmt.Sprintf("%s is not a tlog-tiles tile path", p))
				return
			}
			d.serve(w, "application/octet-stream", "no-cache", func() ([]byte, error) { return d.resource(layout.TilePath(l, n, w8), n, w8, false) })
		case strings.HasPrefix(p, "/v1/policies/"):
			d.policy(w, r, strings.TrimPrefix(p, "/v1/policies/"))
		case p == "/v1/history":
			writeError(w, http.StatusNotFound, "history_not_served", "", "history is not served from a log directory; explore the log's URL for its verifiable history")
		default:
			writeError(w, http.StatusNotFound, "no_such_endpoint", "path", "no endpoint at "+p+" in a log directory")
		}
	})
}

func (d dirLog) serve(w http.ResponseWriter, contentType, cache string, read func() ([]byte, error)) {
	b, err := read()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, "not_found", "path", "not in the log directory")
	case err != nil:
		writeError(w, http.StatusInternalServerError, "unreadable", "path", err.Error())
	default:
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", cache)
		w.Write(b)
	}
}

// policy serves GET /v1/policies/{hash}[?source_digest=D] from the policy
// store's files: the stored document of that digest, or of the version
// listed last for the hash. The page checks the document against the digest
// its policy entry commits.
func (d dirLog) policy(w http.ResponseWriter, r *http.Request, hash string) {
	digest := r.URL.Query().Get("source_digest")
	if !policyHashRE.MatchString(hash) || (digest != "" && !policyHashRE.MatchString(digest)) {
		writeError(w, http.StatusBadRequest, "invalid_hash", "hash", "want sha256: and 64 lowercase hex digits")
		return
	}
	dir := filepath.Join(d.root, "policies")
	if digest == "" {
		f, err := os.Open(filepath.Join(dir, "by-hash", strings.TrimPrefix(hash, "sha256:")))
		if err == nil {
			for sc := bufio.NewScanner(f); sc.Scan(); {
				digest = sc.Text() // the last listed is the version most recently in force
			}
			f.Close()
		}
	}
	if digest == "" {
		writeError(w, http.StatusNotFound, "policy_not_stored", "hash", "policy "+hash+" is not stored in this log directory")
		return
	}
	d.serve(w, "application/json", "no-cache", func() ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, strings.TrimPrefix(digest, "sha256:")+".json"))
	})
}

// Serve serves h on ln until ctx is cancelled, then shuts down.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
