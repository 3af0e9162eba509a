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
	"strings"
	"syscall"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/gateway/mcp"
	"github.com/zt-infra/ztlog/contract/identity"
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

func runMCP(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "proxy" {
		fmt.Fprint(stderr, mcpUsage)
		return exitMCPUsage
	}
	fs := flag.NewFlagSet("mcp proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, mcpUsage); fs.PrintDefaults() }
	server := fs.String("server", os.Getenv("ZTLOG_URL"), "ztlog base URL, https://host:port (env ZTLOG_URL)")
	svid := fs.String("svid", os.Getenv("ZT_SVID"), "path prefix of the agent's X.509-SVID: PREFIX.pem and PREFIX.key (env ZT_SVID)")
	bundle := fs.String("bundle", "", "trust bundle, PEM or SPIFFE bundle JSON (default: bundle.pem next to the SVID)")
	brokerSVID := fs.String("broker-svid", "", "path prefix of the gateway's broker X.509-SVID (default: broker next to --svid)")
	serverID := fs.String("server-id", "", "ztlog's SPIFFE ID (default: any member of the SVID's trust domain)")
	config := fs.String("config", "", "mapping file: server name, per-tool resource pointers, exposed tools (gateway.md)")
	name := fs.String("name", "", "server name in action names (default: the config's, else the upstream's own name)")
	model := fs.String("model", os.Getenv("ZT_MODEL"), "attested model behind the MCP client: provider/name[@version] (env ZT_MODEL); required")
	modelDigest := fs.String("model-digest", "", "attested model digest, sha256:<hex>")
	code := fs.String("code", "", "file whose digest is the attested agent code (default: this zt executable)")
	digestOnly := fs.Bool("digest-only", false, "send only the arguments' digest, not their values (no guardrail inspection)")
	syncResults := fs.Bool("sync-results", false, "answer a call only once its result is committed (default: the result is committed right after the answer, kept in the outbox until then)")
	replay := fs.String("replay", "", "file of honoured receipt ids (default: PREFIX.replay of the broker SVID)")
	outbox := fs.String("outbox", "", "directory keeping signed results until the log commits them (default: PREFIX.outbox of the broker SVID)")
	strict := fs.Bool("strict", false, "require each decision's inclusion proof under a checkpoint that satisfies --trust-policy before forwarding")
	trustPolicy := fs.String("trust-policy", "", "trust policy for --strict (default: trust.policy next to the SVID)")
	listen := fs.String("listen", "", "Streamable HTTP mode: serve MCP on this loopback address (with --upstream)")
	upstream := fs.String("upstream", "", "Streamable HTTP mode: the upstream MCP server's URL")
	timeout := fs.Duration("timeout", 10*time.Second, "decision timeout (one attempt)")
	verbose := fs.Bool("v", false, "log every call (to stderr)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitMCPUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "zt mcp proxy: "+format+"\n", a...)
		return code
	}
	argv := fs.Args()
	httpMode := *listen != "" || *upstream != ""
	switch {
	case *server == "" || *svid == "":
		return fail(exitMCPUsage, "needs --server and --svid")
	case httpMode && (*listen == "" || *upstream == ""):
		return fail(exitMCPUsage, "Streamable HTTP mode needs both --listen and --upstream")
	case httpMode && len(argv) > 0:
		return fail(exitMCPUsage, "give either a command after -- (stdio) or --listen and --upstream (Streamable HTTP), not both")
	case !httpMode && len(argv) == 0:
		return fail(exitMCPUsage, "give the MCP server's command after -- (e.g. -- npx -y @modelcontextprotocol/server-everything)")
	case *model == "":
		return fail(exitMCPUsage, "needs --model (or ZT_MODEL): the model behind the MCP client, attested with every call")
	}
	if httpMode {
		host, _, err := net.SplitHostPort(*listen)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fail(exitMCPUsage, "--listen %q: want a loopback address (127.0.0.1:PORT): the gateway does not authenticate MCP clients, and every call is made as the agent", *listen)
		}
	}
	if *bundle == "" {
		*bundle = filepath.Join(filepath.Dir(*svid), "bundle.pem")
	}
	if *brokerSVID == "" {
		*brokerSVID = filepath.Join(filepath.Dir(*svid), "broker")
	}
	agent, err := identity.FromFiles(identity.Files{Cert: *svid + ".pem", Key: *svid + ".key", Bundle: *bundle})
	if err != nil {
		return fail(exitMCPUsage, "--svid %s: %v", *svid, err)
	}
	defer agent.Close()
	brokerSrc, err := identity.FromFiles(identity.Files{Cert: *brokerSVID + ".pem", Key: *brokerSVID + ".key", Bundle: *bundle})
	if err != nil {
		return fail(exitMCPUsage, "--broker-svid %s: %v", *brokerSVID, err)
	}
	defer brokerSrc.Close()
	o := mcp.Options{URL: *server, Agent: agent, Broker: brokerSrc, Replay: *replay, Outbox: *outbox, Timeout: *timeout,
		ServerName: *name, DigestOnly: *digestOnly, SyncResults: *syncResults}
	if o.Replay == "" {
		o.Replay = *brokerSVID + ".replay"
	}
	if o.Outbox == "" {
		o.Outbox = *brokerSVID + ".outbox"
	}
	if *serverID != "" {
		if o.ServerID, err = spiffeid.FromString(*serverID); err != nil {
			return fail(exitMCPUsage, "--server-id: %v", err)
		}
	}
	if *config != "" {
		raw, err := os.ReadFile(*config)
		if err != nil {
			return fail(exitMCPUsage, "--config: %v", err)
		}
		if o.Mapping, err = mcp.ParseMapping(raw); err != nil {
			return fail(exitMCPUsage, "--config %s: %v", *config, err)
		}
	}
	if o.Runtime, err = mcpRuntime(*model, *modelDigest, *code); err != nil {
		return fail(exitMCPUsage, "%v", err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	// stdout is the MCP channel in stdio mode: logs go to stderr.
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *strict {
		hc := brokerHTTPClient(brokerSrc, o.ServerID)
		if o.Strict, err = strictMode(*trustPolicy, *svid, *server, hc); err != nil {
			return fail(exitMCPUsage, "%v", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var t sdk.Transport
	if httpMode {
		t = &sdk.StreamableClientTransport{Endpoint: *upstream}
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stderr = stderr
		t = &sdk.CommandTransport{Command: cmd}
	}
	g, closeAll, err := mcp.Open(ctx, o, t)
	if err != nil {
		return fail(exitMCPFailed, "%v", err)
	}
	defer closeAll()
	o.Logger.Info("mcp gateway ready", "server", g.Name(), "manifest", g.Manifest(), "ztlog", *server)
	if !httpMode {
		if err := g.Serve(ctx, &sdk.StdioTransport{}); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
			return fail(exitMCPFailed, "%v", err)
		}
		return 0
	}
	srv := &http.Server{Addr: *listen, Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Fprintf(stderr, "zt mcp proxy: serving MCP (Streamable HTTP) at http://%s/ in front of %s as server %q\n", *listen, *upstream, g.Name())
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return 0
	case err := <-errc:
		return fail(exitMCPFailed, "%v", err)
	}
}

// mcpRuntime is the runtime context the gateway attests (the tool and its
// manifest digest are filled per call).
func mcpRuntime(model, modelDigest, code string) (attest.RuntimeContext, error) {
	provider, rest, ok := strings.Cut(model, "/")
	if !ok || provider == "" || rest == "" {
		return attest.RuntimeContext{}, fmt.Errorf("--model %q: want provider/name[@version]", model)
	}
	name, version, _ := strings.Cut(rest, "@")
	rc := attest.RuntimeContext{Model: attest.Model{Provider: provider, Name: name, Version: version, Digest: modelDigest}}
	if code == "" {
		exe, err := os.Executable()
		if err != nil {
			return rc, err
		}
		code = exe
	}
	d, err := fileDigest(code)
	if err != nil {
		return rc, fmt.Errorf("--code: %v", err)
	}
	rc.Code = attest.Code{Digest: d, URI: "file://" + code}
	return rc, nil
}
