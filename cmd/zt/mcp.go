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
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gateway/mcp"
)

const mcpUsage = `usage:
  zt mcp proxy --server URL --svid PREFIX --model P/NAME [flags] -- CMD ARGS...
        stdio: an MCP client launches this in place of the server; the
        real server CMD runs as its child
  zt mcp proxy --server URL --svid PREFIX --model P/NAME [flags] --listen ADDR --upstream URL
        Streamable HTTP: serve MCP at http://ADDR/ in front of the server at URL

Every tools/call is decided by ztlog (action mcp.tool.<server>.<tool>) and
committed before it is forwarded; a deny or no decision is a tool error
naming the reasons and the log index, and nothing is forwarded. An allowed
call is forwarded by the gateway acting as broker (--broker-svid), which
commits its signed result. See contract/gateway/mcp/gateway.md.

flags:
`

// exitMCPUsage and exitMCPFailed are zt mcp's exit statuses.
const (
	exitMCPUsage  = 2
	exitMCPFailed = 1
)

// mcpFlags are zt mcp proxy's flags.
type mcpFlags struct {
	server, svid, bundle, brokerSVID, serverID, config, name string
	model, modelDigest, code, replay, outbox, trustPolicy    string
	listen, upstream                                         string
	digestOnly, syncResults, strict, verbose                 bool
	timeout, policyWatch                                     time.Duration
	argv                                                     []string
}

func (f *mcpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", os.Getenv("ZTLOG_URL"), "ztlog base URL, https://host:port (env ZTLOG_URL)")
	fs.StringVar(&f.svid, "svid", os.Getenv("ZT_SVID"), "path prefix of the agent's X.509-SVID: PREFIX.pem and PREFIX.key (env ZT_SVID)")
	fs.StringVar(&f.bundle, "bundle", "", "trust bundle, PEM or SPIFFE bundle JSON (default: bundle.pem next to the SVID)")
	fs.StringVar(&f.brokerSVID, "broker-svid", "", "path prefix of the gateway's broker X.509-SVID (default: broker next to --svid)")
	fs.StringVar(&f.serverID, "server-id", "", "ztlog's SPIFFE ID (default: any member of the SVID's trust domain)")
	fs.StringVar(&f.config, "config", "", "mapping file: server name, per-tool resource pointers, exposed tools (gateway.md)")
	fs.StringVar(&f.name, "name", "", "server name in action names (default: the config's, else the upstream's own name)")
	fs.StringVar(&f.model, "model", os.Getenv("ZT_MODEL"), "attested model behind the MCP client: provider/name[@version] (env ZT_MODEL); required")
	fs.StringVar(&f.modelDigest, "model-digest", "", "attested model digest, sha256:<hex>")
	fs.StringVar(&f.code, "code", "", "file whose digest is the attested agent code (default: this zt executable)")
	fs.BoolVar(&f.digestOnly, "digest-only", false, "send only the arguments' digest, not their values (no guardrail inspection)")
	fs.BoolVar(&f.syncResults, "sync-results", false, "answer a call only once its result is committed (default: a call is answered once its result is kept in the outbox, synced; the result is committed right after)")
	fs.StringVar(&f.replay, "replay", "", "deprecated, ignored: the gateway keeps the one-time ids of its own receipts in memory (gateway.md, Receipts)")
	fs.StringVar(&f.outbox, "outbox", "", "directory keeping signed results until the log commits them (default: PREFIX.outbox of the broker SVID)")
	fs.BoolVar(&f.strict, "strict", false, "require each decision's inclusion proof under a checkpoint that satisfies --trust-policy before forwarding")
	fs.StringVar(&f.trustPolicy, "trust-policy", "", "trust policy for --strict (default: trust.policy next to the SVID)")
	fs.StringVar(&f.listen, "listen", "", "Streamable HTTP mode: serve MCP on this loopback address (with --upstream)")
	fs.StringVar(&f.upstream, "upstream", "", "Streamable HTTP mode: the upstream MCP server's URL")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "decision timeout (one attempt)")
	fs.DurationVar(&f.policyWatch, "policy-watch", mcp.PossibleTTL, `with "filter_tools": "policy" in --config: how often the tools shown are checked against the policy in force; connected clients are told (tools/list_changed) when it hides other tools`)
	fs.BoolVar(&f.verbose, "v", false, "log every call (to stderr)")
}

func (f *mcpFlags) httpMode() bool { return f.listen != "" || f.upstream != "" }

// check says what is wrong with the flags, or "".
func (f *mcpFlags) check() string {
	switch {
	case f.server == "" || f.svid == "":
		return "needs --server and --svid"
	case f.httpMode() && (f.listen == "" || f.upstream == ""):
		return "Streamable HTTP mode needs both --listen and --upstream"
	case f.httpMode() && len(f.argv) > 0:
		return "give either a command after -- (stdio) or --listen and --upstream (Streamable HTTP), not both"
	case !f.httpMode() && len(f.argv) == 0:
		return "give the MCP server's command after -- (e.g. -- npx -y @modelcontextprotocol/server-everything)"
	case f.model == "":
		return "needs --model (or ZT_MODEL): the model behind the MCP client, attested with every call"
	case f.policyWatch < mcp.MinPolicyWatchInterval:
		return fmt.Sprintf("--policy-watch %v: want at least %v", f.policyWatch, mcp.MinPolicyWatchInterval)
	}
	if f.httpMode() {
		host, _, err := net.SplitHostPort(f.listen)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fmt.Sprintf("--listen %q: want a loopback address (127.0.0.1:PORT): the gateway does not authenticate MCP clients, and every call is made as the agent", f.listen)
		}
	}
	return ""
}

func runMCP(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "proxy" {
		fmt.Fprint(stderr, mcpUsage)
		return exitMCPUsage
	}
	fs := flag.NewFlagSet("mcp proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, mcpUsage); fs.PrintDefaults() }
	var f mcpFlags
	f.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return exitMCPUsage
	}
	f.argv = fs.Args()
	if why := f.check(); why != "" {
		fmt.Fprintf(stderr, "zt mcp proxy: %s\n", why)
		return exitMCPUsage
	}
	o, closeIDs, err := f.options(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "zt mcp proxy: %v\n", err)
		return exitMCPUsage
	}
	defer closeIDs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var t sdk.Transport = &sdk.StreamableClientTransport{Endpoint: f.upstream}
	if !f.httpMode() {
		cmd := exec.Command(f.argv[0], f.argv[1:]...)
		cmd.Stderr = stderr
		t = &sdk.CommandTransport{Command: cmd}
	}
	g, closeAll, err := mcp.Open(ctx, o, t)
	if err != nil {
		fmt.Fprintf(stderr, "zt mcp proxy: %v\n", err)
		return exitMCPFailed
	}
	defer closeAll()
	o.Logger.Info("mcp gateway ready", "server", g.Name(), "manifest", g.Manifest(), "ztlog", f.server)
	if err := f.serve(ctx, g, stderr); err != nil {
		fmt.Fprintf(stderr, "zt mcp proxy: %v\n", err)
		return exitMCPFailed
	}
	return 0
}

// options loads the identities and the mapping into the gateway's options;
// the function returned closes the identities.
func (f *mcpFlags) options(stderr io.Writer) (mcp.Options, func(), error) {
	if f.bundle == "" {
		f.bundle = filepath.Join(filepath.Dir(f.svid), "bundle.pem")
	}
	if f.brokerSVID == "" {
		f.brokerSVID = filepath.Join(filepath.Dir(f.svid), "broker")
	}
	if f.replay != "" {
		fmt.Fprintf(stderr, "zt mcp proxy: --replay is deprecated and ignored: the gateway honours only receipts it obtains itself and keeps their one-time ids in memory (gateway.md, Receipts)\n")
	}
	o := mcp.Options{URL: f.server, Outbox: f.outbox, Timeout: f.timeout,
		ServerName: f.name, DigestOnly: f.digestOnly, SyncResults: f.syncResults, PolicyWatchInterval: f.policyWatch}
	if o.Outbox == "" {
		o.Outbox = f.brokerSVID + ".outbox"
	}
	var err error
	if f.serverID != "" {
		if o.ServerID, err = spiffeid.FromString(f.serverID); err != nil {
			return o, nil, fmt.Errorf("--server-id: %w", err)
		}
	}
	if f.config != "" {
		raw, err := os.ReadFile(f.config)
		if err != nil {
			return o, nil, fmt.Errorf("--config: %w", err)
		}
		if o.Mapping, err = mcp.ParseMapping(raw); err != nil {
			return o, nil, fmt.Errorf("--config %s: %w", f.config, err)
		}
	}
	if o.Runtime.Model, err = attestedModel(f.model, f.modelDigest); err != nil {
		return o, nil, err
	}
	if o.Runtime.Code, err = attestedCode(f.code); err != nil {
		return o, nil, err
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	// stdout is the MCP channel in stdio mode: logs go to stderr.
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.Agent, err = identity.FromFiles(identity.Files{Cert: f.svid + ".pem", Key: f.svid + ".key", Bundle: f.bundle}); err != nil {
		return o, nil, fmt.Errorf("--svid %s: %w", f.svid, err)
	}
	if o.Broker, err = identity.FromFiles(identity.Files{Cert: f.brokerSVID + ".pem", Key: f.brokerSVID + ".key", Bundle: f.bundle}); err != nil {
		o.Agent.Close()
		return o, nil, fmt.Errorf("--broker-svid %s: %w", f.brokerSVID, err)
	}
	closeIDs := func() { o.Agent.Close(); o.Broker.Close() }
	if f.strict {
		if o.Strict, err = strictMode(f.trustPolicy, f.svid, f.server, brokerHTTPClient(o.Broker, o.ServerID)); err != nil {
			closeIDs()
			return o, nil, err
		}
	}
	return o, closeIDs, nil
}

// serve serves the downstream side until the client leaves (stdio) or ctx
// ends.
func (f *mcpFlags) serve(ctx context.Context, g *mcp.Gateway, stderr io.Writer) error {
	if !f.httpMode() {
		if err := g.Serve(ctx, &sdk.StdioTransport{}); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
	srv := &http.Server{Addr: f.listen, Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Fprintf(stderr, "zt mcp proxy: serving MCP (Streamable HTTP) at http://%s/ in front of %s as server %q\n", f.listen, f.upstream, g.Name())
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}
