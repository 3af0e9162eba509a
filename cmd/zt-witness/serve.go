package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/internal/netguard"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/evidence"
	"github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

type serveFlags struct {
	config      string
	keys        listFlag
	stateDir    string
	evidenceDir string
	listen      string
	tlsCert     string
	tlsKey      string
	poll        time.Duration
	logLevel    string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "witness configuration `file` (JSON: the logs to cosign); re-read when it changes and on SIGHUP")
	fs.Var(&f.keys, "key", "witness signer key `file` from zt-witness keygen (repeat for an Ed25519 and an ML-DSA-44 key)")
	fs.StringVar(&f.stateDir, "state", "", "state `directory`: the latest cosigned checkpoint of each log")
	fs.StringVar(&f.evidenceDir, "evidence", "", "`directory` for split-view evidence (default: <state>/evidence)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7380", "`address` to serve on")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate chain `file` (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key `file` of --tls-cert (PEM)")
	fs.DurationVar(&f.poll, "config-poll", config.DefaultPoll, "how often the configuration file is checked for changes")
	fs.StringVar(&f.logLevel, "log-level", "info", "`level`: debug, info, warn or error")
}

func (f *serveFlags) check() error {
	switch {
	case f.config == "":
		return usageError{errors.New("--config is required (the logs this witness cosigns)")}
	case len(f.keys) == 0:
		return usageError{errors.New("--key is required (create one with `zt-witness keygen --name NAME --out FILE`)")}
	case f.stateDir == "":
		return usageError{errors.New("--state is required (a directory only this witness uses)")}
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if f.evidenceDir == "" {
		f.evidenceDir = filepath.Join(f.stateDir, "evidence")
	}
	return nil
}

// opened is a witness with what it opened.
type opened struct {
	w       *server.Witness
	watcher *config.Watcher
	vkeys   []string
	state   *state.Store
}

// open loads the keys, watches the configuration, opens the state and the
// evidence directory, and builds the witness. Close o.state when done.
func (f *serveFlags) open(ctx context.Context, logger *slog.Logger, reg prometheus.Registerer) (*opened, error) {
	o := &opened{}
	var cosigners []*cosigner.Cosigner
	for _, k := range f.keys {
		c, err := cosigner.Load(k)
		if err != nil {
			return nil, err
		}
		cosigners = append(cosigners, c)
		o.vkeys = append(o.vkeys, c.VerifierKey)
	}
	var err error
	if o.watcher, err = config.Watch(ctx, f.config, f.poll, logger); err != nil {
		return nil, usageError{err}
	}
	if o.state, err = state.Open(f.stateDir); err != nil {
		return nil, stateError(err)
	}
	ev, err := evidence.New(f.evidenceDir, logger, reg)
	if err == nil {
		o.w, err = server.New(server.Options{Cosigners: cosigners, Store: o.state, Config: o.watcher.Current, Evidence: ev, Logger: logger, Registerer: reg})
	}
	if err != nil {
		o.state.Close()
		return nil, err
	}
	return o, nil
}

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
	if err := parseFlags(fs, args, cli.Help{Usage: "zt-witness serve --config FILE --key FILE --state DIR [flags]",
		About: "Serve the C2SP tlog-witness API: cosign checkpoints of the logs in --config that are consistent with\nwhat this witness cosigned before. Flags can also be set as ZTWITNESS_<FLAG>."}); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	logger, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o, err := f.open(ctx, logger, reg)
	if err != nil {
		return err
	}
	defer o.state.Close()
	go reloadOnHUP(ctx, o.watcher, f.config, logger)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", o.w.Handler())
	srv := netguard.Harden(&http.Server{
		Handler:     logRequests(logger, mux),
		ReadTimeout: 30 * time.Second, // no long polls here
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	})
	rawLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	var ln net.Listener = netguard.Wrap(rawLn, netguard.Options{Logger: logger})
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	logger.Info("zt-witness serving", "addr", ln.Addr().String(), "name", o.w.Name(), "verifier_keys", o.vkeys,
		"logs", len(o.watcher.Current().Logs), "state", f.stateDir, "evidence", f.evidenceDir)
	fmt.Printf("zt-witness %s listening on %s://%s\n", o.w.Name(), scheme, ln.Addr())
	for _, v := range o.vkeys {
		fmt.Printf("verifier key %s\n", v)
	}
	err = serveUntil(ctx, srv, ln, f.tlsCert, f.tlsKey)
	logger.Info("zt-witness stopped")
	return err
}

// reloadOnHUP re-reads the configuration on SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, watcher *config.Watcher, path string, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			logger.Info("SIGHUP: re-reading the configuration", "path", path)
			watcher.Reload()
		}
	}
}

// serveUntil serves on ln (TLS when cert is set) until ctx ends, then shuts
// srv down.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, cert, key string) error {
	errc := make(chan error, 1)
	go func() {
		if cert != "" {
			errc <- srv.ServeTLS(ln, cert, key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
	})
}

// stateError names the flag when the state directory is locked.
func stateError(err error) error {
	if errors.Is(err, state.ErrLocked) {
		return fmt.Errorf("%w (is another zt-witness running with the same --state?)", err)
	}
	return err
}
