// Package service assembles `ztlog serve`: the evidence log, its read API,
// and the operational endpoints, on one HTTP server with graceful shutdown.
//
//	GET /healthz   200 while the process runs
//	GET /readyz    200 when every readiness check passes, else 503; JSON body
//	               names each check and why it fails
//	GET /metrics   Prometheus metrics
//	GET /.well-known/ztlog  origin and checkpoint verifier key
//	GET /v1/policies/{hash}  the stored source of a policy version
//	GET /v1/history  an agent's or correlation id's entries, with a
//	               completeness proof (verifier/history/history.md)
//	GET /ui/       the evidence explorer (verifier/explorer): a web page that
//	               verifies the log in the browser
//
// Shutdown (context cancelled, e.g. SIGTERM) stops accepting connections,
// lets in-flight requests finish, then closes the log, which waits until
// every entry it accepted is covered by a published checkpoint.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/transparency-dev/tessera"

	"github.com/zt-infra/ztlog/contract/gate/correlation"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/netguard"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/httpread"
	"github.com/zt-infra/ztlog/log/storage"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/verifier/explorer"
)

// Config is everything `ztlog serve` is told.
type Config struct {
	// Listen is the address to serve on (host:port).
	Listen string
	// Storage opens the log's storage driver (posix.Opener, aws.Opener,
	// gcp.Opener from log/storage/...).
	Storage storage.Opener
	// Key is the log's checkpoint signing key.
	Key *ztlog.Key
	// BatchMaxSize, BatchMaxAge, CheckpointInterval, MaxPending,
	// CommitDelay and CommitSiblings tune the log (zero: the log package's
	// defaults; a zero CommitDelay is the self-tuned group commit).
	BatchMaxSize       uint
	BatchMaxAge        time.Duration
	CheckpointInterval time.Duration
	MaxPending         int
	CommitDelay        time.Duration
	CommitSiblings     int
	// Witnesses, when set, must cosign each checkpoint before it is
	// published (see log.Options.Witnesses); WitnessOptions tune that.
	Witnesses      *tessera.WitnessGroup
	WitnessOptions *tessera.WitnessOptions
	// WitnessPolicy is the trust policy text the witnesses come from,
	// published at /.well-known/ztlog for clients and auditors.
	WitnessPolicy []byte
	// HTTPClient carries the log's outgoing requests (to witnesses).
	// Default: the storage package's.
	HTTPClient *http.Client
	// ShutdownTimeout bounds graceful shutdown. Default 30s.
	ShutdownTimeout time.Duration
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// TLS, when set, makes Serve speak TLS (the contract's mutual TLS).
	TLS *tls.Config
	// PlainHTTPReads, with TLS set, also answers plain-HTTP requests on the
	// same port, for the public read-only endpoints only (PublicPath): a
	// tlog-tiles client needs nothing but the URL and the verifier key.
	PlainHTTPReads bool
	// Decision, when set, mounts the decision path (see DecisionPath); TLS
	// then defaults to the identity's mutual TLS. Nil: a read-only log.
	Decision *DecisionPath
	// PolicyStore keeps the source of every policy version that comes into
	// force and serves it at GET /v1/policies/{hash}; a version whose
	// source cannot be stored does not come into force. Nil: the storage
	// driver's object store (ObjectPolicyStore; AWS and GCP), shared by
	// every frontend of the log; with a driver that has none (POSIX),
	// sources are not stored (the endpoint answers 404 saying so).
	PolicyStore PolicyStore
	// ResultClaims, when several frontends serve the decision path of one
	// log, is where they agree on each decision's one result before
	// appending it (results.Claims; sqlclaims over the AWS driver's
	// database). Nil: this process is the log's only frontend.
	ResultClaims results.Claims
	// Witnessing, when set, collects the witnesses' cosignatures before a
	// checkpoint is published: it supplies Witnesses, WitnessOptions and
	// HTTPClient, a "witnesses" /readyz check and report, and its metrics.
	Witnessing *witnessing.Collector
	// MaxConns caps the process's open client connections; the file
	// descriptors left over are the reserve storage needs, so a connection
	// flood is refused at accept and never starves the log (see
	// internal/netguard). Default: RLIMIT_NOFILE minus a reserve.
	MaxConns int
	// MaxConnsPerSource caps open connections from one IP. Default: half
	// of MaxConns.
	MaxConnsPerSource int
	// ReadHeaderTimeout, BodyReadTimeout and IdleTimeout bound a request's
	// headers, its body and a keep-alive connection's idle wait (zero:
	// internal/netguard's defaults, 10s, 30s, 30s).
	ReadHeaderTimeout time.Duration
	BodyReadTimeout   time.Duration
	IdleTimeout       time.Duration
}

// Service is a running ztlog server.
type Service struct {
	cfg      Config
	log      *ztlog.Log
	router   *mux.Router
	registry *prometheus.Registry
	logger   *slog.Logger
	bundles  *bundles
	started  time.Time
	decision *mountedPath // nil for a read-only log
	history  *historyIndex

	mu          sync.Mutex
	checks      map[string]func(context.Context) error
	details     map[string]func(context.Context) any
	receiptJWKS func() any
}

// New opens the log and builds the HTTP routes. It does not listen; see
// Serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if c := cfg.Witnessing; c != nil {
		cfg.Witnesses, cfg.WitnessOptions, cfg.HTTPClient = c.Group(), c.WitnessOptions(), c.HTTPClient()
	}
	if cfg.Decision != nil && cfg.TLS == nil && cfg.Decision.Identity != nil {
		cfg.TLS = identity.ServerTLS(cfg.Decision.Identity)
	}
	if cfg.Key == nil {
		return nil, errors.New("service: a log key is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.ShutdownTimeout < 0 {
		// Serve would return at once on shutdown, dropping in-flight
		// decisions without an answer.
		return nil, fmt.Errorf("service: shutdown timeout %s is negative (0 takes the default, 30s)", cfg.ShutdownTimeout)
	}
	if cfg.Storage == nil {
		return nil, errors.New("service: no storage: Config.Storage is nil")
	}
	backend, err := cfg.Storage(ctx, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	if cfg.PolicyStore == nil && backend.Objects != nil {
		// Every frontend of the log stores and serves policy sources in
		// the driver's object store.
		cfg.PolicyStore = ObjectPolicyStore(backend.Objects)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l, err := ztlog.Open(ctx, ztlog.Options{
		Backend:            backend,
		Key:                cfg.Key,
		BatchMaxSize:       cfg.BatchMaxSize,
		BatchMaxAge:        cfg.BatchMaxAge,
		CheckpointInterval: cfg.CheckpointInterval,
		MaxPending:         cfg.MaxPending,
		CommitDelay:        cfg.CommitDelay,
		CommitSiblings:     cfg.CommitSiblings,
		Witnesses:          cfg.Witnesses,
		WitnessOptions:     cfg.WitnessOptions,
		Logger:             cfg.Logger,
		Registerer:         reg,
	})
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		log:      l,
		router:   mux.NewRouter(),
		registry: reg,
		logger:   cfg.Logger,
		started:  time.Now(),
		checks:   map[string]func(context.Context) error{},
		details:  map[string]func(context.Context) any{},
	}
	s.addCheck("log", l.Healthy)
	if cfg.Witnesses != nil && (cfg.WitnessOptions == nil || !cfg.WitnessOptions.FailOpen) {
		s.addCheck("witnessed_checkpoint", l.CheckpointWitnessed)
	}
	if c := cfg.Witnessing; c != nil {
		reg.MustRegister(c.Metrics())
		s.addCheck("witnesses", c.Check)
		s.addDetail("witnesses", c.Report)
	}
	httpread.Register(s.router, l)
	s.bundles = &bundles{l: l}
	s.router.HandleFunc("/v1/bundles/{index}", s.bundles.serve).Methods(http.MethodGet)
	s.router.HandleFunc("/v1/policies/{hash}", s.servePolicy).Methods(http.MethodGet)
	s.router.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	s.router.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	s.router.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})).Methods(http.MethodGet)
	s.router.HandleFunc("/.well-known/ztlog", s.wellKnown).Methods(http.MethodGet)
	ui := explorer.Handler(explorer.Config{Log: l, Mode: "serve"})
	s.router.Handle("/ui", ui)
	s.router.PathPrefix("/ui/").Handler(ui)
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "no_such_endpoint", Field: "path",
			Message: fmt.Sprintf("no endpoint at %s", r.URL.Path)})
	})
	s.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httperr.WriteError(w, http.StatusMethodNotAllowed, &httperr.Error{Code: "method_not_allowed",
			Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)})
	})
	var follow time.Duration
	if cfg.Decision != nil {
		follow = cfg.Decision.FollowInterval
	}
	s.history = newHistoryIndex(s, follow)
	go s.history.run(untilClosed(ctx, s))
	if cfg.Decision != nil {
		if err := s.mountDecision(ctx, cfg.Decision); err != nil {
			l.Close(context.Background())
			return nil, err
		}
	}
	return s, nil
}

// Log is the service's evidence log.
func (s *Service) Log() *ztlog.Log { return s.log }

// Router is where further endpoints are added before Serve.
func (s *Service) Router() *mux.Router { return s.router }

// Registry is the service's Prometheus registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// addCheck adds a named check to /readyz.
func (s *Service) addCheck(name string, check func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// addDetail adds named information to the /readyz body (under
// "details"), shown whether or not the checks pass, e.g. each witness's
// state.
func (s *Service) addDetail(name string, detail func(context.Context) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.details[name] = detail
}

// Handler is the service's HTTP handler, with request logging.
func (s *Service) Handler() http.Handler { return s.logRequests(s.plainGuard(s.router)) }

// PublicPath reports whether path is a public, read-only endpoint, served
// over plain HTTP too when PlainHTTPReads is set.
func PublicPath(path string) bool {
	for _, p := range []string{"/log/", "/v1/entries/", "/v1/proofs/", "/v1/bundles/", "/v1/policies/", "/v1/history", "/ui/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	switch path {
	case "/.well-known/ztlog", "/ui", "/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/receipts/jwks.json", "/v1/policy":
		return true
	}
	return false
}

// plainGuard refuses every non-public endpoint on a plain-HTTP connection
// of a TLS service.
func (s *Service) plainGuard(next http.Handler) http.Handler {
	if s.cfg.TLS == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil && !PublicPath(r.URL.Path) {
			httperr.WriteError(w, http.StatusForbidden, &httperr.Error{Code: "tls_required", Field: "path",
				Message: fmt.Sprintf("%s is served over HTTPS with a SPIFFE identity only; plain HTTP serves the public read-only log API", r.URL.Path)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// in-flight requests finish, then the log publishes everything it accepted.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := netguard.HardenWith(&http.Server{
		Handler:           s.Handler(),
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
	}, s.cfg.BodyReadTimeout)
	body := s.cfg.BodyReadTimeout
	if body <= 0 {
		body = netguard.BodyReadTimeout
	}
	guarded := netguard.Wrap(ln, netguard.Options{MaxConns: s.cfg.MaxConns, MaxConnsPerSource: s.cfg.MaxConnsPerSource, Logger: s.logger})
	s.logger.Info("connection limits", "max_conns", guarded.Budget().Max(), "fd_limit", netguard.FDLimit(),
		"read_header_timeout", srv.ReadHeaderTimeout.String(), "body_read_timeout", body.String(), "idle_timeout", srv.IdleTimeout.String())
	ln = guarded
	if s.cfg.TLS != nil {
		ln = newSniffListener(ln, s.cfg.TLS, s.cfg.PlainHTTPReads)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("serving", "addr", ln.Addr().String(), "origin", s.log.Origin())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.logger.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, err, s.log.Close(sctx))
}

func (s *Service) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready   bool              `json:"ready"`
	Checks  map[string]string `json:"checks"`
	Details map[string]any    `json:"details,omitempty"`
}

func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := s.checks
	details := map[string]func(context.Context) any{}
	for n, d := range s.details {
		details[n] = d
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := Readiness{Ready: true, Checks: map[string]string{}}
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			out.Ready = false
			out.Checks[n] = err.Error()
		} else {
			out.Checks[n] = "ok"
		}
	}
	for n, d := range details {
		if out.Details == nil {
			out.Details = map[string]any{}
		}
		out.Details[n] = d(ctx)
	}
	status := http.StatusOK
	if !out.Ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, status, out)
}

// WellKnown is the body of /.well-known/ztlog.
type WellKnown struct {
	// Origin is the log's checkpoint origin.
	Origin string `json:"origin"`
	// VerifierKey is the checkpoint verifier key (signed-note vkey).
	VerifierKey string `json:"verifier_key"`
	// LogURL is the path prefix of the tlog-tiles resources.
	LogURL string `json:"log_url"`
	// ReceiptJWKS is the receipt signing keys (contract/receipt/receipt.md).
	ReceiptJWKS any `json:"receipt_jwks,omitempty"`
	// WitnessPolicy is the trust policy (C2SP tlog-policy text) whose
	// quorum every published checkpoint meets; absent when unwitnessed.
	WitnessPolicy string `json:"witness_policy,omitempty"`
	// DefaultBroker is the broker (receipt audience, and part of the
	// action digest) a request that names none is decided for; absent
	// when requests must name one.
	DefaultBroker string `json:"default_broker,omitempty"`
}

func (s *Service) wellKnown(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=60")
	s.mu.Lock()
	jwks := s.receiptJWKS
	s.mu.Unlock()
	wk := WellKnown{
		Origin:        s.log.Origin(),
		VerifierKey:   s.log.VerifierKey(),
		LogURL:        "/log/",
		WitnessPolicy: string(s.cfg.WitnessPolicy),
	}
	if jwks != nil {
		wk.ReceiptJWKS = jwks()
	}
	if s.decision != nil {
		wk.DefaultBroker = s.decision.cfg.DefaultBroker
	}
	httperr.WriteJSON(w, http.StatusOK, wk)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// logRequests writes one structured log line per request.
func (s *Service) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r = correlation.Start(w, r)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
			slog.Int("bytes", sw.bytes), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr), slog.String("correlation_id", correlation.ID(r.Context())),
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			leaf := r.TLS.PeerCertificates[0]
			var uri string
			if len(leaf.URIs) > 0 {
				uri = leaf.URIs[0].String()
			}
			attrs = append(attrs, slog.String("peer_spiffe_id", uri), slog.String("peer_serial", leaf.SerialNumber.Text(16)),
				slog.String("peer_svid_expires", leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
		attrs = append(attrs, correlation.Attrs(r.Context())...)
		s.logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}
