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
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/zt-infra/ztlog/contract/server"
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
	logLevel           string
	witness            witnessFlags
	contract           contractFlags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "JSON file of settings (keys are flag names)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to serve on")
	fs.StringVar(&f.storageKind, "storage", "posix", "storage driver: posix, aws or gcp")
	fs.StringVar(&f.dataDir, "data-dir", "", "log directory (posix)")
	fs.StringVar(&f.dbDSN, "db-dsn", "", "MySQL-compatible database DSN (aws)")
	fs.StringVar(&f.bucket, "bucket", "", "S3 bucket (aws) or GCS bucket (gcp)")
	fs.StringVar(&f.bucketPrefix, "bucket-prefix", "", "prefix of the log's objects in the bucket (aws, gcp)")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "endpoint of an S3-compatible store that is not AWS S3 (aws)")
	fs.StringVar(&f.spanner, "spanner", "", "Spanner database projects/P/instances/I/databases/D (gcp; SPANNER_EMULATOR_HOST selects an emulator)")
	fs.StringVar(&f.gcsEndpoint, "gcs-endpoint", "", "base URL of a GCS-compatible store that is not Google's, used without credentials (gcp)")
	fs.StringVar(&f.keyFile, "key", "", "checkpoint signer key file, from `ztlog keygen`")
	fs.StringVar(&f.origin, "origin", "", "log origin; must match the key's name (default: the key's name)")
	fs.UintVar(&f.batchMaxSize, "batch-max-size", ztlog.DefaultBatchMaxSize, "most entries sequenced in one storage write")
	fs.DurationVar(&f.batchMaxAge, "batch-max-age", ztlog.DefaultBatchMaxAge, "how long a batch waits for more entries once started")
	fs.DurationVar(&f.checkpointInterval, "checkpoint-interval", ztlog.DefaultCheckpointInterval, "how often a new checkpoint is published while the log grows (at least 100ms)")
	fs.IntVar(&f.maxPending, "max-pending", ztlog.DefaultMaxPending, "entries waiting to be sequenced before appends are pushed back")
	fs.DurationVar(&f.commitDelay, "commit-delay", 0, "under load, how long a batch may wait to grow (0: off; at most 100ms); see --commit-siblings")
	fs.IntVar(&f.commitSiblings, "commit-siblings", ztlog.DefaultCommitSiblings, "entries that must be waiting before --commit-delay applies")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long graceful shutdown may take")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.witness.register(fs)
	f.contract.register(fs)
}

func (f *serveFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// Tessera logs through klog; send those lines through the same handler.
	klog.SetSlogLogger(logger.With("component", "tessera"))
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
	return server.Config{
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
		Logger:             logger,
	}, nil
}

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
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
