package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/evidence"
	"github.com/zt-infra/ztlog/witness/federation"
	"github.com/zt-infra/ztlog/witness/state"
)

// errChecksFailed makes `federate --once` exit 1.
var errChecksFailed = errors.New("cross-checks failed (see above)")

var federateHelp = cli.Help{Usage: "zt-witness federate --config FILE --state DIR [--once] [flags]",
	About: "Cross-check the logs of --config with the peers it names: fetch their checkpoints, prove\nconsistency, ask the local witness to cosign, and file split-view evidence."}

func runFederate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("federate", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "witness configuration file (logs with url, peers, federate section)")
	stateDir := fs.String("state", "", "state directory for the last checkpoint seen of each log (not the serve state directory)")
	evidenceDir := fs.String("evidence", "", "directory for split-view evidence (default: <state>/evidence)")
	once := fs.Bool("once", false, "check every log once and exit: 0 all consistent, 1 split view or error")
	listen := fs.String("listen", "", "serve /metrics and /healthz on this address (default: none)")
	poll := fs.Duration("config-poll", config.DefaultPoll, "how often the configuration file is checked for changes")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, federateHelp); err != nil {
		return err
	}
	if *cfgPath == "" || *stateDir == "" {
		return usageError{errors.New("federate needs --config and --state")}
	}
	logger, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	watcher, err := config.Watch(ctx, *cfgPath, *poll, logger)
	if err != nil {
		return usageError{err}
	}
	if watcher.Current().Federate == nil {
		return usageError{fmt.Errorf("config %s has no \"federate\" section (witness_url, witness_key)", *cfgPath)}
	}
	seen, err := state.Open(*stateDir)
	err = stateError(err)
	if err != nil {
		return err
	}
	defer seen.Close()
	if *evidenceDir == "" {
		*evidenceDir = filepath.Join(*stateDir, "evidence")
	}
	reg := prometheus.NewRegistry()
	ev, err := evidence.New(*evidenceDir, logger, reg)
	if err != nil {
		return err
	}
	reporter := "zt-witness federate (" + watcher.Current().Federate.Verifier().Name() + ")"
	fed, err := federation.New(federation.Options{Config: watcher.Current, Seen: seen, Evidence: ev, Reporter: reporter, Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	if *once {
		failed := false
		for _, r := range fed.CheckAll(ctx) {
			for _, p := range r.SplitViews {
				fmt.Printf("SPLIT VIEW %s: evidence %s (check it with `zt-audit verify %s`)\n", r.Origin, p, p)
				failed = true
			}
			for _, e := range r.Errors {
				fmt.Printf("ERROR %s: %v\n", r.Origin, e)
				failed = true
			}
			if len(r.SplitViews) == 0 && len(r.Errors) == 0 {
				fmt.Printf("ok %s: size %d consistent with every view (cosigned this round: %v)\n", r.Origin, r.Size, r.Cosigned)
			}
		}
		if failed {
			return errChecksFailed
		}
		return nil
	}
	if *listen != "" {
		addr, err := cli.ServeOps(ctx, *listen, reg, func() (any, error) { return nil, nil })
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *listen, err)
		}
		fmt.Printf("zt-witness federate metrics on http://%s/metrics\n", addr)
	}
	logger.Info("zt-witness federate running", "config", *cfgPath, "state", *stateDir, "evidence", *evidenceDir)
	return fed.Run(ctx)
}
