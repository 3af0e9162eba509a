package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/internal/slogx"
	ztlog "github.com/zt-infra/ztlog/log"
)

// serveFlags are the flags of `ztlog serve`, shared with `ztlog dev`.
type serveFlags struct {
	config             string
	listen             string
	storageKind        string
	dataDir            string
	dbDSN              string
	bucket             string
	bucketPrefix       string
	s3Endpoint         string
	spanner            string
	gcsEndpoint        string
	keyFile            string
	origin             string
	batchMaxSize       uint
	batchMaxAge        time.Duration
	checkpointInterval time.Duration
	maxPending         int
	commitDelay        time.Duration
	commitSiblings     int
	shutdownTimeout    time.Duration
	maxConns           int
	maxConnsPerSource  int
	readHeaderTimeout  time.Duration
	bodyReadTimeout    time.Duration
	idleTimeout        time.Duration
	logLevel           string
	witness            witnessFlags
	contract           contractFlags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "JSON file of settings (keys are flag names)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to serve on")
	fs.StringVar(&f.storageKind, "storage", "posix", "storage driver: posix, aws or gcp")
	fs.StringVar(&f.dataDir, "data-dir", "", "log `directory` (POSIX storage)")
	fs.StringVar(&f.dbDSN, "db-dsn", "", "MySQL-compatible database DSN (aws)")
	fs.StringVar(&f.bucket, "bucket", "", "S3 bucket (aws) or GCS bucket (gcp)")
	fs.StringVar(&f.bucketPrefix, "bucket-prefix", "", "prefix of the log's objects in the bucket (aws, gcp)")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "endpoint of an S3-compatible store that is not AWS S3 (aws)")
	fs.StringVar(&f.spanner, "spanner", "", "Spanner database projects/P/instances/I/databases/D (gcp; SPANNER_EMULATOR_HOST selects an emulator)")
	fs.StringVar(&f.gcsEndpoint, "gcs-endpoint", "", "base URL of a GCS-compatible store that is not Google's, used without credentials (gcp)")
	fs.StringVar(&f.keyFile, "key", "", "checkpoint signer key `file`, from ztlog keygen")
	fs.StringVar(&f.origin, "origin", "", "log origin; must match the key's name (default: the key's name)")
	fs.UintVar(&f.batchMaxSize, "batch-max-size", ztlog.DefaultBatchMaxSize, "most entries sequenced in one storage write")
	fs.DurationVar(&f.batchMaxAge, "batch-max-age", ztlog.DefaultBatchMaxAge, "how long a batch waits for more entries once started")
	fs.DurationVar(&f.checkpointInterval, "checkpoint-interval", ztlog.DefaultCheckpointInterval, "how often a new checkpoint is published while the log grows (at least 100ms)")
	fs.IntVar(&f.maxPending, "max-pending", ztlog.DefaultMaxPending, "entries waiting to be sequenced before appends are pushed back")
	fs.Func("commit-delay", "group commit: auto (default: under load a batch waits for more entries, at most 5ms; at light load nothing waits), off, or a fixed wait (at most 100ms); see --commit-siblings", func(s string) (err error) {
		f.commitDelay, err = ztlog.ParseCommitDelay(s)
		return err
	})
	fs.IntVar(&f.commitSiblings, "commit-siblings", ztlog.DefaultCommitSiblings, "entries that must be waiting (with auto: waiting, or announced by decisions under way) before the commit delay applies")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long graceful shutdown may take")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&f.maxConns, "max-conns", 0, "most client connections open at once (0: the file descriptor limit less a reserve for storage)")
	fs.IntVar(&f.maxConnsPerSource, "max-conns-per-source", 0, "most client connections open at once from one IP address (0: half of --max-conns)")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send a request's headers")
	fs.DurationVar(&f.bodyReadTimeout, "body-read-timeout", 30*time.Second, "how long a client may take to send a request's body")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 30*time.Second, "how long an idle keep-alive connection is kept open")
	f.witness.register(fs)
	f.contract.register(fs)
}

func (f *serveFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
	}
	// One line per record (Tessera's multi-line errors folded), and a fault
	// that repeats (a full disk, a witness down) logs once per 10s with a
	// count instead of flooding stderr.
	logger := slog.New(slogx.RateLimit(slogx.Fold(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), 10*time.Second, "request"))
	// Tessera logs through klog; send those lines through the same handler,
	// every level rate-limited (it repeats a failed publication every
	// 500ms at info level).
	base := slogx.Fold(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	thirdParty := slog.New(slogx.RateLimitFrom(base, 10*time.Second, slog.LevelDebug))
	klog.SetSlogLogger(thirdParty.With("component", "tessera"))
	// Tessera's storage drivers (and other libraries) also log through
	// slog's default logger: a full disk logs "Failed to remove temporary
	// file" per write.
	slog.SetDefault(thirdParty.With("component", "third_party"))
	return logger, nil
}

// serviceConfig turns the flags into a service configuration, loading the
// key and checking the origin against it.
func (f *serveFlags) serviceConfig(logger *slog.Logger) (server.Config, error) {
	if f.keyFile == "" {
		return server.Config{}, usageError{errors.New("--key is required (create one with `ztlog keygen --origin O --out FILE`)")}
	}
	key, err := ztlog.LoadKey(f.keyFile)
	if err != nil {
		return server.Config{}, err
	}
	if f.origin != "" && f.origin != key.Origin() {
		return server.Config{}, usageError{fmt.Errorf("--origin %q does not match the key, which signs for %q", f.origin, key.Origin())}
	}
	open, err := f.storage()
	if err != nil {
		return server.Config{}, err
	}
	var policies server.PolicyStore
	if f.storageKind == "" || f.storageKind == "posix" {
		// The AWS and GCP drivers keep policy sources in their object
		// store (server.ObjectPolicyStore), which every frontend shares.
		policies = server.DirPolicyStore(filepath.Join(f.dataDir, "policies"))
	}
	return server.Config{
		PolicyStore:        policies,
		Listen:             f.listen,
		Storage:            open,
		Key:                key,
		BatchMaxSize:       f.batchMaxSize,
		BatchMaxAge:        f.batchMaxAge,
		CheckpointInterval: f.checkpointInterval,
		MaxPending:         f.maxPending,
		CommitDelay:        f.commitDelay,
		CommitSiblings:     f.commitSiblings,
		ShutdownTimeout:    f.shutdownTimeout,
		MaxConns:           f.maxConns,
		MaxConnsPerSource:  f.maxConnsPerSource,
		ReadHeaderTimeout:  f.readHeaderTimeout,
		BodyReadTimeout:    f.bodyReadTimeout,
		IdleTimeout:        f.idleTimeout,
		Logger:             logger,
	}, nil
}

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
	fs.BoolVar(&f.contract.readOnly, "read-only", false, "serve the log's public read API only, without an identity source (no decision API); without this flag serve refuses to start without one")
	if err := cli.Parse(fs, args, serveHelp); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	if err := applyEnvAndConfig(fs, f.config); err != nil {
		return err
	}
	logger, err := f.logger()
	if err != nil {
		return err
	}
	cfg, err := f.serviceConfig(logger)
	if err != nil {
		return err
	}
	if err := f.witness.apply(&cfg, logger); err != nil {
		return err
	}
	if cfg.ResultClaims, err = f.claims(ctx); err != nil {
		return err
	}
	return serve(ctx, cfg, &f.contract, logger, nil)
}

// started is what serve hands its caller once listening.
type started struct {
	addr string
	tls  bool
	svc  *server.Service
}

// serve opens the service (and, with an identity source, the decision
// path), listens, calls ready (if any) once listening, and serves until ctx
// ends. SIGHUP reloads the policy, user keys and identity files.
func serve(ctx context.Context, cfg server.Config, cf *contractFlags, logger *slog.Logger, ready func(started) error) error {
	server.TuneGC(logger)
	src, err := cf.openIdentity(ctx)
	if err != nil {
		return err
	}
	switch {
	case src == nil && !cf.readOnly:
		return usageError{errors.New("no identity source, so no decision API (POST /v1/actions would be a 404): give the server's SVID " +
			"(--svid-cert, --svid-key, --bundle) or a Workload API (--workload-api or SPIFFE_ENDPOINT_SOCKET), " +
			"or --read-only to serve only the log's public read API")}
	case src != nil && cf.readOnly:
		src.Close()
		return usageError{errors.New("--read-only with an identity source: drop --read-only to serve the decision API, or the identity flags to serve the read API only")}
	}
	if src != nil {
		defer src.Close()
		if cfg.Decision, err = cf.decision(src); err != nil {
			return err
		}
		cfg.PlainHTTPReads = cf.plainHTTPReads
	}
	svc, err := server.New(ctx, cfg)
	if err != nil {
		if errors.Is(err, server.ErrUserTokens) {
			return usageError{errors.New("delegated users need both --user-issuer and --user-jwks")}
		}
		return err
	}
	closeLog := func() { svc.Log().Close(context.Background()) }
	go reloadOnHUP(ctx, svc)
	if src != nil {
		logger.Info("APIs served", "decision", true, "read", true,
			"endpoints", "POST /v1/actions, POST /actions, POST /v1/results, /v1/agents (mTLS or JWT-SVID); /log/, /v1/entries/, /v1/proofs/, /v1/bundles/, /.well-known/ztlog, /healthz, /readyz, /metrics")
	} else {
		logger.Info("APIs served", "decision", false, "read", true,
			"endpoints", "/log/, /v1/entries/, /v1/proofs/, /v1/bundles/, /.well-known/ztlog, /healthz, /readyz, /metrics (read-only: no decision API)")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		closeLog()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if ready != nil {
		if err := ready(started{addr: ln.Addr().String(), tls: src != nil, svc: svc}); err != nil {
			ln.Close()
			closeLog()
			return err
		}
	}
	return svc.Serve(ctx, ln)
}

// reloadOnHUP calls svc.Reload on each SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, svc *server.Service) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			svc.Reload(ctx, "sighup")
		}
	}
}

// serveHelp is ztlog serve -h.
var serveHelp = cli.Help{Usage: "ztlog serve --key FILE --data-dir DIR [--listen ADDR] [flags]",
	About: `Serve the evidence log: the public read API (tlog-tiles, entries, proofs)
and, with an identity source (--svid-cert or --workload-api), the decision
path (POST /v1/actions, /v1/results, /v1/agents) with --policy and
--receipt-key; without an identity source it refuses to start unless
--read-only says so. Every flag can also be set as ZTLOG_<FLAG> (dashes as
underscores) or as a key of the JSON object in --config FILE; the command
line wins over the environment, which wins over the file.`}
