// Package explorer is the evidence explorer: a web page that shows a ztlog
// log (its checkpoint, witnesses, entries, an agent's history, policy
// versions) and verifies it in the browser, not on the server.
//
// The page is static files (plain HTML, CSS and JavaScript modules, no
// framework, no build step) embedded in the binary and served under /ui/.
// It reads the log through its public read API (C2SP tlog-tiles under
// /log/, GET /v1/policies/{hash}, GET /v1/history) and checks, with
// WebCrypto: the checkpoint's Ed25519 note signature against the key of the
// auditor's trust policy, witness cosignatures (cosignature/v1) against the
// policy's quorum, each entry's RFC 6962 leaf hash against the tree, and its
// inclusion proof, built from the hash tiles, against the checkpoint's root
// (ui/verify.js). Each check is shown PASS or FAIL with its reason.
//
// The server helps only to find: GET /ui/api/find names the indices of
// entries that match a search, GET /ui/api/growth samples the log's size
// over time. The page verifies every entry it shows itself, so a finder
// that lies can hide an entry (only a verifiable history, section "history"
// of the page, proves none is missing) but cannot show a false one.
//
// Handler serves the page for `ztlog serve` (the log is the server's own;
// the page takes the trust policy the auditor pastes, or else the server's
// published keys, marked as not independent). Offline serves it for
// `zt-audit explore`: the page, the auditor's trust policy, and the log's
// read API proxied from a URL or read from a log directory.
package explorer

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/zt-infra/ztlog/internal/httperr"
)

//go:embed ui
var uiFiles embed.FS

// Reader reads a tlog-tiles log: what the finder needs. *log.Log and
// Tessera's client fetchers implement it.
type Reader interface {
	// ReadCheckpoint returns the latest signed checkpoint.
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	// ReadEntryBundle returns entry bundle index, partial width p (0: full).
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// Config is what the page is served with.
type Config struct {
	// Log is read by the finder (GET /ui/api/find, /ui/api/growth).
	Log Reader
	// TrustPolicy is the auditor's trust policy (C2SP tlog-policy text),
	// handed to the page, which verifies against it. Nil: the page uses the
	// policy its user pasted, or else the server's published keys, which it
	// marks as not independent.
	TrustPolicy []byte
	// TrustSource names where TrustPolicy came from, for the page to show
	// (a file name).
	TrustSource string
	// Mode is shown by the page: "serve" (the log's own server) or
	// "explore" (zt-audit explore, an auditor's local copy of the page).
	Mode string
}

// PageConfig is the body of GET /ui/config.json.
type PageConfig struct {
	Mode        string `json:"mode"`
	TrustPolicy string `json:"trust_policy,omitempty"`
	TrustSource string `json:"trust_source,omitempty"`
}

// contentSecurityPolicy keeps the page to its own files and its own origin:
// no inline script or style, nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the page and its finder under /ui/ (and redirects /ui).
func Handler(cfg Config) http.Handler {
	static, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory exists: a build without it does not compile
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(static))
	f := &finder{log: cfg.Log, scans: make(chan struct{}, maxScans)}
	page := PageConfig{Mode: cfg.Mode, TrustPolicy: string(cfg.TrustPolicy), TrustSource: cfg.TrustSource}
	if page.Mode == "" {
		page.Mode = "serve"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		switch p := r.URL.Path; {
		case p == "/ui":
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		case p == "/ui/config.json":
			h.Set("Cache-Control", "no-store")
			httperr.WriteJSON(w, http.StatusOK, page)
		case p == "/ui/api/find":
			f.find(w, r)
		case p == "/ui/api/growth":
			f.growth(w, r)
		case strings.HasPrefix(p, "/ui/api/"):
			writeError(w, http.StatusNotFound, "no_such_endpoint", "path", "no endpoint at "+p)
		default:
			h.Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		}
	})
}

func writeError(w http.ResponseWriter, status int, code, field, msg string) {
	httperr.WriteError(w, status, &httperr.Error{Code: code, Field: field, Message: msg})
}
