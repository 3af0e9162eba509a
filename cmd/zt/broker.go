package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/netguard"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

var brokerHelp = cli.Help{Usage: "zt broker --server URL --svid PREFIX [--listen ADDR] [flags]", About: `Serves the work API (POST /v1/work, broker.md) over mutual TLS with the
broker's X.509-SVID. Agents hand it work with a receipt; it verifies the
receipt offline (JWKS from the server, issuer, audience = its own SPIFFE ID,
expiry, one-time id recorded across restarts, action digest = the work),
runs the work sandboxed, signs the result and posts it to the server.`}

// brokerFlags are zt broker's own flags; the sandbox, replay, outbox and
// strict flags are zt run's.
type brokerFlags struct {
	runFlags
	workloadAPI, listen string
	metricsListen       string
	maxConcurrent       int
	flushEvery          time.Duration
}

func (f *brokerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "ztlog base `URL`, https://host:port (receipt keys, results)")
	fs.StringVar(&f.svid, "svid", "", "path `PREFIX` of the broker's X.509-SVID: PREFIX.pem and PREFIX.key")
	fs.StringVar(&f.workloadAPI, "workload-api", "", "take the broker's SVID and bundle from the SPIFFE Workload API at this `address` (unix:///path; \"env\" = $SPIFFE_ENDPOINT_SOCKET) instead of --svid")
	fs.StringVar(&f.bundle, "bundle", "", "trust bundle `file` (default: bundle.pem next to the SVID)")
	fs.StringVar(&f.serverID, "server-id", "", "the server's SPIFFE `ID` (default: any member of the trust domain)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8444", "`address` of the work API")
	fs.IntVar(&f.maxConcurrent, "max-concurrent", 4, "work running at once; more is 503 busy")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve /metrics and /healthz over plain HTTP on this `address` (default: none)")
	fs.StringVar(&f.sandboxMode, "sandbox", "local", "`sandbox`: local (Landlock + namespaces) or nono")
	fs.BoolVar(&f.unsafe, "unsafe-no-sandbox", false, "run WITHOUT a sandbox (rlimits and timeout only); logged, and every result says so")
	fs.StringVar(&f.replay, "replay", "", "`file` of honoured receipt ids (default: PREFIX.replay)")
	fs.StringVar(&f.outbox, "outbox", "", "`directory` keeping signed results until the log commits them (default: PREFIX.outbox)")
	fs.DurationVar(&f.flushEvery, "outbox-interval", 30*time.Second, "how often to retry results waiting in the outbox")
	fs.BoolVar(&f.strict, "strict", false, "require each decision's inclusion proof under a checkpoint that satisfies --trust-policy")
	fs.StringVar(&f.trustPolicy, "trust-policy", "", "trust policy `file`: witnessed receipts are checked against it, and --strict's proofs (default: trust.policy next to the SVID)")
	fs.StringVar(&f.nonoProfile, "nono-profile", "", "nono sandbox: nono `profile` to start from")
	fs.BoolVar(&f.nonoRollback, "nono-rollback", false, "nono sandbox: rollback snapshots")
	fs.BoolVar(&f.nonoAuditIntegrity, "nono-audit-integrity", false, "nono sandbox: audit integrity")
}

// identity loads the broker's SVID from files or the Workload API.
func (f *brokerFlags) identity() (identity.Source, error) {
	if f.workloadAPI != "" {
		addr := f.workloadAPI
		if addr == "env" {
			addr = ""
		}
		if (f.replay == "" || f.outbox == "") && f.svid == "" {
			return nil, errors.New("with --workload-api, name the replay file (--replay) and the outbox directory (--outbox)")
		}
		src, err := identity.FromWorkloadAPI(context.Background(), addr, 10*time.Second)
		return src, workloadAPIError(err)
	}
	if f.bundle == "" {
		f.bundle = filepath.Join(filepath.Dir(f.svid), "bundle.pem")
	}
	src, err := identity.FromFiles(identity.Files{Cert: f.svid + ".pem", Key: f.svid + ".key", Bundle: f.bundle})
	if err != nil {
		return nil, fmt.Errorf("--svid %s: %w", f.svid, err)
	}
	return src, nil
}

func runBroker(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("zt broker", flag.ContinueOnError)
	var f brokerFlags
	f.register(fs)
	if code := parseStatus(fs, args, brokerHelp, stderr, exitUsage); code >= 0 {
		return code
	}
	if f.server == "" || (f.svid == "") == (f.workloadAPI == "") {
		fmt.Fprintf(stderr, "zt broker: needs --server and one of --svid or --workload-api\n")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := f.serve(ctx, slog.New(slog.NewJSONHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintf(stderr, "zt broker: %v\n", err)
		return exitUsage
	}
	return 0
}

// serve opens the broker and serves the work API until ctx ends.
func (f *brokerFlags) serve(ctx context.Context, logger *slog.Logger) error {
	src, err := f.identity()
	if err != nil {
		return err
	}
	defer src.Close()
	self, _ := src.GetX509SVID()
	var sid spiffeid.ID
	if f.serverID != "" {
		if sid, err = spiffeid.FromString(f.serverID); err != nil {
			return fmt.Errorf("--server-id: %w", err)
		}
	}
	hc := brokerHTTPClient(src, sid)
	f.quiet = true
	runner, err := f.runner()
	if err != nil {
		return err
	}
	var strict *broker.Strict
	var witnesses *trustpolicy.Policy
	if f.strict {
		if strict, err = strictMode(f.trustPolicy, f.svid, f.server, hc); err != nil {
			return err
		}
	} else if witnesses, err = witnessPolicy(f.trustPolicy, f.svid); err != nil {
		return err
	}
	f.replay, f.outbox = defaultPath(f.replay, f.svid+".replay"), defaultPath(f.outbox, f.svid+".outbox")
	p, err := broker.Open(ctx, broker.ProcessConfig{SVID: src, Server: f.server, HTTP: hc, ReplayPath: f.replay, OutboxDir: f.outbox,
		Runner: runner, Strict: strict, Witnesses: witnesses, Logger: logger})
	if err != nil {
		return err
	}
	defer p.Close()
	go p.FlushEvery(ctx, f.flushEvery, logger)
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	handler, err := f.ops(ctx, p, logger, (&broker.Server{Broker: p.Broker, MaxConcurrent: f.maxConcurrent}).Handler())
	if err != nil {
		return err
	}
	srv := netguard.Harden(&http.Server{Handler: handler})
	logger.Info("broker ready", "id", self.ID.String(), "listen", ln.Addr().String(), "issuer", p.Issuer, "sandbox", runner.Describe(),
		"replay", f.replay, "outbox", f.outbox, "strict", f.strict, "server", f.server)
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(tls.NewListener(netguard.Wrap(ln, netguard.Options{Logger: logger}), broker.ServerTLS(src, src, self.ID.TrustDomain())))
	}()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// ops serves /metrics and /healthz at --metrics-listen (if set) and
// returns the work handler, counted.
func (f *brokerFlags) ops(ctx context.Context, p *broker.Process, logger *slog.Logger, work http.Handler) (http.Handler, error) {
	if f.metricsListen == "" {
		return work, nil
	}
	reg := cli.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_broker_work_requests_total",
		Help: "Work API requests by HTTP status (200 ran, 4xx refused, 503 busy)."}, []string{"code"})
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ztlog_broker_outbox_pending",
		Help: "Signed results waiting in the outbox to be committed (-1: the outbox is unreadable)."}, func() float64 { return float64(p.Pending()) })
	reg.MustRegister(requests, pending)
	addr, err := cli.ServeOps(ctx, f.metricsListen, reg, func() (any, error) {
		n := p.Pending()
		if n < 0 {
			return nil, fmt.Errorf("the outbox %s is unreadable", p.Outbox.Dir())
		}
		return map[string]any{"issuer": p.Issuer, "outbox_pending": n}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", f.metricsListen, err)
	}
	logger.Info("broker metrics", "listen", addr.String())
	return promhttp.InstrumentHandlerCounter(requests, work), nil
}
