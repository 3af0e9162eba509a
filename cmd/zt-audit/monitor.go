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

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/monitor"
)

// monitorFlags are zt-audit monitor's flags.
type monitorFlags struct {
	logSpec, policyFile, stateDir, webhook, spiffeBundle, listen string
	interval, window, heartbeat                                  time.Duration
	once, merkleOnly                                             bool
}

func (f *monitorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.logSpec, "log", "", "the log: its tlog-tiles `URL` (https://host/log/) or its directory")
	fs.StringVar(&f.policyFile, "policy", "", "trust policy `file` (C2SP tlog-policy): the log key and witness quorum you trust")
	fs.StringVar(&f.stateDir, "state", "", "`directory` for the monitor's state (the last accepted checkpoint and the audit position)")
	fs.DurationVar(&f.interval, "interval", 10*time.Second, "how often to read the log's checkpoint")
	fs.StringVar(&f.webhook, "webhook", "", "also POST each alert as JSON to this `URL`")
	fs.BoolVar(&f.once, "once", false, "poll once and exit: status 1 if a failure was alerted, 2 if the log could not be read")
	fs.DurationVar(&f.window, "window", audit.DefaultWindow, "alert on allows older than this without a result")
	fs.BoolVar(&f.merkleOnly, "merkle-only", false, "replay the tree and check tiles only; do not read entries")
	fs.StringVar(&f.spiffeBundle, "spiffe-bundle", "", "SPIFFE trust bundle you trust ([TRUST_DOMAIN=]`FILE`): alert on committed attestations and broker statements that do not verify against it (without it they are not checked)")
	fs.StringVar(&f.listen, "listen", "", "serve /metrics and /healthz over plain HTTP on this `address` (default: none)")
	fs.DurationVar(&f.heartbeat, "heartbeat", time.Hour, "log a heartbeat line on stderr this often while all is well (0: never)")
}

var monitorHelp = cli.Help{Usage: "zt-audit monitor --log URL|DIR --policy FILE --state DIR [flags]",
	About: `Follow the log: prove each new checkpoint consistent with the last, check every new entry, and
print alerts as JSON lines on stdout (and to --webhook). A heartbeat line on stderr says the
monitor is alive; --listen serves /metrics and /healthz (503 when the log was not read lately).`}

// runMonitor is zt-audit monitor: follow the log and alert.
func runMonitor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	var f monitorFlags
	f.register(fs)
	if err := parseArgs(fs, args, monitorHelp); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("monitor takes no arguments (got %q)", fs.Arg(0))
	case f.stateDir == "":
		return fmt.Errorf("--state is required: a directory where the monitor keeps its position across restarts")
	case f.interval <= 0:
		return fmt.Errorf("--interval must be positive")
	}
	pol, err := loadPolicy(f.policyFile)
	if err != nil {
		return err
	}
	src, err := openLog(ctx, f.logSpec)
	if err != nil {
		return err
	}
	checks, err := entryChecks(f.spiffeBundle)
	if err != nil {
		return err
	}
	st := newMonitorStatus(f.interval)
	out := json.NewEncoder(os.Stdout)
	hook := &http.Client{Timeout: 10 * time.Second}
	m, err := monitor.Open(f.stateDir, pol, monitor.Options{
		Audit: audit.Options{Window: f.window, MerkleOnly: f.merkleOnly, Verifiers: checks},
		Alert: func(a monitor.Alert) {
			st.alerted(a)
			out.Encode(a)
			if f.webhook != "" {
				postAlert(ctx, hook, f.webhook, a)
			}
		},
	})
	if err != nil {
		return err
	}
	if cp := m.Checkpoint(); cp != nil {
		fmt.Fprintf(os.Stderr, "zt-audit monitor: resuming %s at size %d\n", cp.Origin, cp.Size)
	}
	if f.listen != "" {
		addr, err := cli.ServeOps(ctx, f.listen, st.registry(), st.health)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", f.listen, err)
		}
		fmt.Fprintf(os.Stderr, "zt-audit monitor: metrics on http://%s/metrics, health on /healthz\n", addr)
	}
	return f.follow(ctx, m, src, st)
}

// follow polls the log until ctx ends (or once, with --once).
func (f *monitorFlags) follow(ctx context.Context, m *monitor.Monitor, src audit.Source, st *monitorStatus) error {
	lastBeat := time.Now()
	for {
		if err := m.Poll(ctx, src); err != nil {
			return err
		}
		st.polled(m)
		if f.once {
			if n := st.failures(); n > 0 {
				return cli.Fail(fmt.Errorf("%d failure alert(s)", n))
			}
			if m.Unreachable() {
				// Nothing was verified: not a valid log, an unusable one.
				return fmt.Errorf("the log could not be read (see the %s alert); nothing was verified", monitor.KindUnreachable)
			}
			return nil
		}
		if f.heartbeat > 0 && time.Since(lastBeat) >= f.heartbeat {
			fmt.Fprintf(os.Stderr, "zt-audit monitor: heartbeat: %s\n", st.line())
			lastBeat = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
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
