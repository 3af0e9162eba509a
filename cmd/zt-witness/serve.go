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

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "witness configuration file (JSON: the logs to cosign); re-read when it changes and on SIGHUP")
	fs.Var(&f.keys, "key", "witness signer key file from `zt-witness keygen` (repeat for an Ed25519 and an ML-DSA-44 key)")
	fs.StringVar(&f.stateDir, "state", "", "state directory: the latest cosigned checkpoint of each log")
	fs.StringVar(&f.evidenceDir, "evidence", "", "directory for split-view evidence (default: <state>/evidence)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7380", "address to serve on")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate chain (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key of --tls-cert (PEM)")
	fs.DurationVar(&f.poll, "config-poll", config.DefaultPoll, "how often the configuration file is checked for changes")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
	logger, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	var cosigners []*cosigner.Cosigner
	for _, k := range f.keys {
		c, err := cosigner.Load(k)
		if err != nil {
			return err
		}
		cosigners = append(cosigners, c)
	}
	watcher, err := config.Watch(ctx, f.config, f.poll, logger)
	if err != nil {
		return usageError{err}
	}
	st, err := state.Open(f.stateDir)
	if err != nil {
		return err
	}
	defer st.Close()
	if f.evidenceDir == "" {
		f.evidenceDir = filepath.Join(f.stateDir, "evidence")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ev, err := evidence.New(f.evidenceDir, logger, reg)
	if err != nil {
		return err
	}
	w, err := server.New(server.Options{Cosigners: cosigners, Store: st, Config: watcher.Current, Evidence: ev, Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: re-reading the configuration", "path", f.config)
				watcher.Reload()
			}
		}
	}()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", w.Handler())
	srv := netguard.Harden(&http.Server{
		Handler:     logRequests(logger, mux),
		ReadTimeout: 30 * time.Second, // no long polls here
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	})
	rawLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %v", f.listen, err)
	}
	var ln net.Listener = netguard.Wrap(rawLn, netguard.Options{Logger: logger})
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	var vkeys []string
	for _, c := range cosigners {
		vkeys = append(vkeys, c.VerifierKey)
	}
	logger.Info("zt-witness serving", "addr", ln.Addr().String(), "name", w.Name(), "verifier_keys", vkeys,
		"logs", len(watcher.Current().Logs), "state", f.stateDir, "evidence", f.evidenceDir)
	fmt.Printf("zt-witness %s listening on %s://%s\n", w.Name(), scheme, ln.Addr())
	for _, v := range vkeys {
		fmt.Printf("verifier key %s\n", v)
	}
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
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
	err = srv.Shutdown(sctx)
	logger.Info("zt-witness stopped")
	return err
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
