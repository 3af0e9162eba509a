package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/explorer"
)

// runExplore is `zt-audit explore --log URL|DIR --policy FILE [--listen
// ADDR]`: serves the evidence explorer on localhost for an auditor: the
// page verifies the log in the browser against the auditor's trust policy;
// the log's read API is proxied from URL or read from the directory.
func runExplore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("explore", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: its server's URL (https://host/ or https://host/log/) or its directory (ztlog's <data-dir>/log)")
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy): the log key and witness quorum the page verifies against")
	listen := fs.String("listen", "127.0.0.1:8600", "`address` to serve the explorer on (keep it on localhost)")
	if err := parseArgs(fs, args, cli.Help{Usage: "zt-audit explore --log URL|DIR --policy FILE [--listen 127.0.0.1:PORT]",
		About: "Serve the evidence explorer for this log on localhost: open the printed URL in a browser.\nThe page verifies checkpoints, cosignatures, leaf hashes and inclusion proofs itself,\nagainst the trust policy given here."}); err != nil {
		return err
	}
	if *logSpec == "" {
		return errors.New("--log is required: the log's URL (https://host/) or its directory")
	}
	if *policyFile == "" {
		return errors.New("--policy is required: the trust policy (C2SP tlog-policy) naming the log key and witnesses you trust")
	}
	text, err := os.ReadFile(*policyFile)
	if err != nil {
		return err
	}
	if _, err := trustpolicy.Parse(text); err != nil {
		return fmt.Errorf("%s: %w", *policyFile, err)
	}
	h, err := explorer.Offline(ctx, explorer.OfflineConfig{Log: *logSpec, TrustPolicy: text, TrustSource: *policyFile})
	if err != nil {
		return err // names the log as given to --log
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	fmt.Fprintf(os.Stdout, "zt-audit explore: the evidence explorer of %s, verified against %s\n  open http://%s/ui/\nStop with Ctrl-C.\n", *logSpec, *policyFile, ln.Addr())
	return explorer.Serve(ctx, ln, h)
}
