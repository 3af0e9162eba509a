package main

import (
	"context"
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

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gateway/a2a"
)

const a2aUsage = `usage: zt a2a --upstream URL --server URL --svid PREFIX --broker-svid PREFIX [--listen ADDR] [flags]

An A2A gate (contract/gateway/a2a/gateway.md): serves the upstream A2A
agent's card and JSON-RPC endpoint at --listen; every message/send and
message/stream is decided by ztlog (action a2a.<agent>.<skill>, resource
the agent card's url) as the agent --svid, for the broker --broker-svid,
before it is forwarded. A deny, or no decision, is a JSON-RPC error and
nothing is forwarded; an allowed call's result is committed, linked to
its decision. Point A2A clients at http://ADDR instead of the agent.

flags:
`

// runA2A runs the A2A gate until SIGINT/SIGTERM: exit 0, or 2 for a
// usage or setup error.
func runA2A(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("a2a", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, a2aUsage); fs.PrintDefaults() }
	upstream := fs.String("upstream", "", "the A2A agent's base URL (its card at /.well-known/agent-card.json)")
	server := fs.String("server", "", "ztlog base URL, https://host:port")
	svid := fs.String("svid", "", "path prefix of the agent identity the gate decides as: PREFIX.pem and PREFIX.key")
	brokerSVID := fs.String("broker-svid", "", "path prefix of the gate's broker identity (receipt audience, result signer)")
	bundle := fs.String("bundle", "", "trust bundle (default: bundle.pem next to the SVID)")
	serverID := fs.String("server-id", "", "ztlog's SPIFFE ID (default: any member of the SVID's trust domain)")
	agent := fs.String("agent", "", "the agent's name in actions (default: from the agent card's name)")
	listen := fs.String("listen", "127.0.0.1:8480", "address the gate serves A2A clients at (plain HTTP: keep it on loopback)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "zt a2a: "+format+"\n", a...)
		return exitUsage
	}
	if *upstream == "" || *server == "" || *svid == "" || *brokerSVID == "" || fs.NArg() > 0 {
		return fail("needs --upstream, --server, --svid and --broker-svid")
	}
	if *bundle == "" {
		*bundle = filepath.Join(filepath.Dir(*svid), "bundle.pem")
	}
	var sid spiffeid.ID
	var err error
	if *serverID != "" {
		if sid, err = spiffeid.FromString(*serverID); err != nil {
			return fail("--server-id: %v", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := a2aConfig(*server, *svid, *brokerSVID, *bundle, sid)
	if err != nil {
		return fail("%v", err)
	}
	cfg.Upstream, cfg.Agent = *upstream, *agent
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	g, err := a2a.New(ctx, cfg)
	if err != nil {
		return fail("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail("--listen: %v", err)
	}
	cfg.Logger.Info("zt a2a: gating", "listen", ln.Addr().String(), "upstream", *upstream, "agent", g.Agent(),
		"actions", "a2a."+g.Agent()+".<skill>")
	hs := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); hs.Shutdown(context.Background()) }()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fail("%v", err)
	}
	return exitAllow
}

// a2aConfig builds the gate's ztlog side: the SDK client acting as the
// agent, and the broker identity with its result reporter.
func a2aConfig(server, svid, brokerSVID, bundle string, sid spiffeid.ID) (a2a.Config, error) {
	src, err := client.FromFiles(svid, bundle)
	if err != nil {
		return a2a.Config{}, fmt.Errorf("--svid: %w", err)
	}
	c, err := client.New(client.Config{URL: server, SVID: src, Bundles: src, ServerID: sid})
	if err != nil {
		return a2a.Config{}, err
	}
	bsrc, err := identity.FromFiles(identity.Files{Cert: brokerSVID + ".pem", Key: brokerSVID + ".key", Bundle: bundle})
	if err != nil {
		return a2a.Config{}, fmt.Errorf("--broker-svid: %w", err)
	}
	bsvid, err := bsrc.GetX509SVID()
	if err != nil {
		return a2a.Config{}, fmt.Errorf("--broker-svid: %w", err)
	}
	tlsc := identity.ClientTLS(bsrc, bsrc, sid, bsvid.ID.TrustDomain())
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsc}}
	return a2a.Config{Decider: c, Broker: bsrc, Reporter: &broker.HTTPReporter{Client: hc, BaseURL: server}}, nil
}
