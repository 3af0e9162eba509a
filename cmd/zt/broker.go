package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
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
	"strings"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/netguard"
)

const brokerUsage = `usage: zt broker --server URL --svid PREFIX [--listen ADDR] [flags]

Serves the work API (POST /v1/work, broker.md) over mutual TLS with the
broker's X.509-SVID. Agents hand it work with a receipt; it verifies the
receipt offline (JWKS from the server, issuer, audience = its own SPIFFE ID,
expiry, one-time id recorded across restarts, action digest = the work),
runs the work sandboxed, signs the result and posts it to the server.

flags:
`

func runBroker(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, brokerUsage); fs.PrintDefaults() }
	var f runFlags
	server := fs.String("server", "", "ztlog base URL, https://host:port (receipt keys, results)")
	svid := fs.String("svid", "", "path prefix of the broker's X.509-SVID: PREFIX.pem and PREFIX.key")
	workloadAPI := fs.String("workload-api", "", "take the broker's SVID and bundle from the SPIFFE Workload API at this address (unix:///path; \"env\" = $SPIFFE_ENDPOINT_SOCKET) instead of --svid")
	bundle := fs.String("bundle", "", "trust bundle (default: bundle.pem next to the SVID)")
	serverID := fs.String("server-id", "", "the server's SPIFFE ID (default: any member of the trust domain)")
	listen := fs.String("listen", "127.0.0.1:8444", "address of the work API")
	maxConcurrent := fs.Int("max-concurrent", 4, "work running at once; more is 503 busy")
	fs.StringVar(&f.sandboxMode, "sandbox", "local", "sandbox: local (Landlock + namespaces) or nono")
	fs.BoolVar(&f.unsafe, "unsafe-no-sandbox", false, "run WITHOUT a sandbox (rlimits and timeout only); logged, and every result says so")
	fs.StringVar(&f.replay, "replay", "", "file of honoured receipt ids (default: PREFIX.replay)")
	fs.StringVar(&f.outbox, "outbox", "", "directory keeping signed results until the log commits them (default: PREFIX.outbox)")
	flushEvery := fs.Duration("outbox-interval", 30*time.Second, "how often to retry results waiting in the outbox")
	fs.BoolVar(&f.strict, "strict", false, "require each decision's inclusion proof under a checkpoint that satisfies --trust-policy")
	fs.StringVar(&f.trustPolicy, "trust-policy", "", "trust policy: witnessed receipts are checked against it, and --strict's proofs (default: trust.policy next to the SVID)")
	fs.StringVar(&f.nonoProfile, "nono-profile", "", "nono sandbox: nono profile to start from")
	fs.BoolVar(&f.nonoRollback, "nono-rollback", false, "nono sandbox: rollback snapshots")
	fs.BoolVar(&f.nonoAuditIntegrity, "nono-audit-integrity", false, "nono sandbox: audit integrity")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "zt broker: "+format+"\n", a...)
		return exitUsage
	}
	if *server == "" || (*svid == "") == (*workloadAPI == "") {
		return fail("needs --server and one of --svid or --workload-api")
	}
	var src identity.Source
	var err error
	if *workloadAPI != "" {
		addr := *workloadAPI
		if addr == "env" {
			addr = ""
		}
		if src, err = identity.FromWorkloadAPI(context.Background(), addr, 10*time.Second); err != nil {
			return fail("%v", err)
		}
		if (f.replay == "" || f.outbox == "") && *svid == "" {
			return fail("with --workload-api, name the replay file (--replay) and the outbox directory (--outbox)")
		}
	} else {
		if *bundle == "" {
			*bundle = filepath.Join(filepath.Dir(*svid), "bundle.pem")
		}
		if src, err = identity.FromFiles(identity.Files{Cert: *svid + ".pem", Key: *svid + ".key", Bundle: *bundle}); err != nil {
			return fail("--svid %s: %v", *svid, err)
		}
	}
	defer src.Close()
	self, _ := src.GetX509SVID()
	var sid spiffeid.ID
	if *serverID != "" {
		if sid, err = spiffeid.FromString(*serverID); err != nil {
			return fail("--server-id: %v", err)
		}
	}
	hc := brokerHTTPClient(src, sid)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	issuer, err := wellKnownOrigin(ctx, hc, *server)
	if err != nil {
		return fail("%v", err)
	}
	f.quiet = true
	runner, err := f.runner()
	if err != nil {
		return fail("%v", err)
	}
	if f.replay == "" {
		f.replay = *svid + ".replay"
	}
	replay, err := broker.OpenReplay(f.replay, 5*time.Second, time.Now())
	if err != nil {
		return fail("replay file %s: %v", f.replay, err)
	}
	defer replay.Close()
	if f.outbox == "" {
		f.outbox = *svid + ".outbox"
	}
	outbox, err := broker.OpenOutbox(f.outbox, logger)
	if err != nil {
		return fail("%v", err)
	}
	reporter := &broker.HTTPReporter{Client: hc, BaseURL: *server}
	go flushOutbox(ctx, outbox, reporter, *flushEvery, logger)
	cfg := broker.Config{SVID: src, Issuer: issuer, Keys: &receipt.HTTPKeys{Client: hc, URL: *server + "/v1/receipts/jwks.json"},
		Replay: replay, Runner: runner, Reporter: outbox.Reporter(reporter), Logger: logger}
	if f.strict {
		if cfg.Strict, err = strictMode(f.trustPolicy, *svid, *server, hc); err != nil {
			return fail("%v", err)
		}
	} else if cfg.Witnesses, err = witnessPolicy(f.trustPolicy, *svid); err != nil {
		return fail("%v", err)
	}
	b, err := broker.New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail("listen on %s: %v", *listen, err)
	}
	srv := netguard.Harden(&http.Server{Handler: (&broker.Server{Broker: b, MaxConcurrent: *maxConcurrent}).Handler()})
	logger.Info("broker ready", "id", self.ID.String(), "listen", ln.Addr().String(), "issuer", issuer, "sandbox", runner.Describe(),
		"replay", f.replay, "outbox", f.outbox, "strict", f.strict, "server", *server)
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(tls.NewListener(netguard.Wrap(ln, netguard.Options{Logger: logger}), broker.ServerTLS(src, src, self.ID.TrustDomain())))
	}()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return 0
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return 0
		}
		return fail("%v", err)
	}
}

// wellKnownOrigin reads the log origin (the receipt issuer) from the
// server, over the authenticated connection.
func wellKnownOrigin(ctx context.Context, hc *http.Client, server string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/.well-known/ztlog", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("reading the log origin from %s: %v", server, err)
	}
	defer resp.Body.Close()
	var wk struct {
		Origin string `json:"origin"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&wk); err != nil || wk.Origin == "" {
		return "", fmt.Errorf("reading the log origin from %s: HTTP %d %v", server, resp.StatusCode, err)
	}
	return wk.Origin, nil
}

// flushOutbox commits results waiting in the outbox now and then every
// interval, until ctx ends.
func flushOutbox(ctx context.Context, o *broker.Outbox, r *broker.HTTPReporter, every time.Duration, logger *slog.Logger) {
	for {
		if n, err := o.Flush(ctx, r); err != nil {
			logger.Warn("results still wait in the outbox", "outbox", o.Dir(), "error", err.Error())
		} else if n > 0 {
			logger.Info("committed results from the outbox", "outbox", o.Dir(), "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
