package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/monitor"
)

// runMonitor is `zt-audit monitor --log URL --policy FILE --state DIR`:
// follow the log, alert as JSON lines on stdout (and to --webhook).
func runMonitor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: its tlog-tiles URL (https://host/log/) or its directory")
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy): the log key and witness quorum you trust")
	stateDir := fs.String("state", "", "directory for the monitor's state (the last accepted checkpoint and the audit position)")
	interval := fs.Duration("interval", 10*time.Second, "how often to read the log's checkpoint")
	webhook := fs.String("webhook", "", "also POST each alert as JSON to this URL")
	once := fs.Bool("once", false, "poll once and exit: status 1 if a failure was alerted, 2 if the log could not be read")
	window := fs.Duration("window", audit.DefaultWindow, "alert on allows older than this without a result")
	merkleOnly := fs.Bool("merkle-only", false, "replay the tree and check tiles only; do not read entries")
	spiffeBundle := fs.String("spiffe-bundle", "", "SPIFFE trust bundle you trust ([TRUST_DOMAIN=]FILE): alert on committed attestations and broker statements that do not verify against it (without it they are not checked)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("monitor takes no arguments (got %q)", fs.Arg(0))
	}
	if *stateDir == "" {
		return fmt.Errorf("--state is required: a directory where the monitor keeps its position across restarts")
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval must be positive")
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}
	src, err := openLog(ctx, *logSpec)
	if err != nil {
		return err
	}
	checks, err := entryChecks(*spiffeBundle)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	hook := &http.Client{Timeout: 10 * time.Second}
	failed := 0
	m, err := monitor.Open(*stateDir, pol, monitor.Options{
		Audit: audit.Options{Window: *window, MerkleOnly: *merkleOnly, Verifiers: checks},
		Alert: func(a monitor.Alert) {
			if a.Severity == audit.Fail {
				failed++
			}
			out.Encode(a)
			if *webhook != "" {
				postAlert(ctx, hook, *webhook, a)
			}
		},
	})
	if err != nil {
		return err
	}
	if cp := m.Checkpoint(); cp != nil {
		fmt.Fprintf(os.Stderr, "zt-audit monitor: resuming %s at size %d\n", cp.Origin, cp.Size)
	}
	for {
		if err := m.Poll(ctx, src); err != nil {
			return err
		}
		if *once {
			if failed > 0 {
				return failedError{fmt.Errorf("%d failure alert(s)", failed)}
			}
			if m.Unreachable() {
				// Nothing was verified: not a valid log, an unusable one.
				return fmt.Errorf("the log could not be read (see the %s alert); nothing was verified", monitor.KindUnreachable)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// postAlert sends one alert to the webhook; a webhook that fails is
// reported on stderr and does not stop the monitor.
func postAlert(ctx context.Context, c *http.Client, url string, a monitor.Alert) {
	body, _ := json.Marshal(a)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(os.Stderr, "zt-audit monitor: webhook: %v\n", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zt-audit monitor: webhook: %v\n", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(os.Stderr, "zt-audit monitor: webhook %s answered %s\n", url, resp.Status)
	}
}
