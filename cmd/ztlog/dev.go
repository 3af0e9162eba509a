package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ztlog "github.com/zt-infra/ztlog/log"
)

// devOrigin is the origin of the embedded default log.
const devOrigin = "localhost/ztlog-dev"

func runDev(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("dev", flag.ContinueOnError)
	var f serveFlags
	f.register(fset)
	if err := fset.Parse(args); err != nil {
		return usageError{err}
	}
	if err := applyEnvAndConfig(fset, f.config); err != nil {
		return err
	}
	if f.dataDir == "" {
		f.dataDir = ".ztlog-dev"
	}
	devDir := filepath.Join(f.dataDir, "dev")
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return err
	}
	if f.keyFile == "" {
		f.keyFile = filepath.Join(devDir, "log.key")
	}
	if _, err := os.Stat(f.keyFile); errors.Is(err, fs.ErrNotExist) {
		skey, _, err := ztlog.GenerateKey(devOrigin)
		if err != nil {
			return err
		}
		if err := ztlog.WriteKeyFile(f.keyFile, skey); err != nil {
			return err
		}
	}
	logDir := filepath.Join(f.dataDir, "log")
	f.dataDir = logDir
	logger, err := f.logger()
	if err != nil {
		return err
	}
	cfg, err := f.serviceConfig(logger)
	if err != nil {
		return err
	}
	// The embedded default is witnessed: by a local witness unless a policy
	// is given.
	witnessed := f.witness.policy
	if witnessed == "" {
		stop, err := startDevWitness(devDir, cfg.Key, logger)
		if err != nil {
			return fmt.Errorf("dev witness: %v", err)
		}
		defer stop()
		f.witness.policy = filepath.Join(devDir, "witness.policy")
		witnessed = f.witness.policy + " (local witness " + devWitnessName + ")"
	}
	setup, err := f.witness.apply(&cfg, logger)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, func(addr string) {
		base := "http://" + addr
		fmt.Printf(`ztlog dev: serving the embedded default log

  origin        %s
  verifier key  %s
  log storage   %s
  log key       %s
  witnessed by  %s

Try:
  curl %s/log/checkpoint
  curl %s/.well-known/ztlog
  curl %s/readyz
  curl %s/v1/entries/0

Stop with Ctrl-C; the log is kept in %s and continues on the next start.
`, cfg.Key.Origin(), cfg.Key.VerifierKey, logDir, f.keyFile, witnessed, base, base, base, base, logDir)
	}, setup)
}

func runKeygen(args []string) error {
	fset := flag.NewFlagSet("keygen", flag.ContinueOnError)
	origin := fset.String("origin", "", "the log's origin, a schema-less URL such as example.com/ztlog")
	out := fset.String("out", "", "file to write the signer key to (mode 0600; never overwritten)")
	if err := fset.Parse(args); err != nil {
		return usageError{err}
	}
	if *origin == "" || *out == "" {
		return usageError{errors.New("keygen needs --origin and --out")}
	}
	skey, vkey, err := ztlog.GenerateKey(*origin)
	if err != nil {
		return usageError{err}
	}
	if err := ztlog.WriteKeyFile(*out, skey); err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}
