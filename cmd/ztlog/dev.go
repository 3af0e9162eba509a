package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/server/devenv"
	ztlog "github.com/zt-infra/ztlog/log"
)

// devOrigin is the origin of the embedded default log.
const devOrigin = "localhost/ztlog-dev"

// The dev identities (contract/server/devenv).
var (
	devTrustDomain = devenv.TrustDomain
	devAgentID     = devenv.AgentID
	devBrokerID    = devenv.BrokerID
	devAdminID     = devenv.AdminID
)

// devAgentAlias is the demo agent's actor name in the older ZT control
// plane: the existing ZT JS SDK sends it, unmodified, to POST /actions.
const devAgentAlias = "hello-world-agent"

// The example policies ztlog dev writes (opa/ and cedar/); identical to
// testdata/policies (a test checks).
//
//go:embed devpolicy
var devPolicy embed.FS

func runDev(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("dev", flag.ContinueOnError)
	var f serveFlags
	f.register(fset)
	dd := fset.Lookup("data-dir")
	dd.Usage, dd.DefValue = "`directory` of the dev setup: DIR/dev holds the CA, SVIDs, keys and policies, DIR/log the log", ".ztlog-dev"
	if err := cli.Parse(fset, args, devHelp); err != nil {
		return err
	}
	if err := applyEnvAndConfig(fset, f.config); err != nil {
		return err
	}
	if f.dataDir == "" {
		f.dataDir = ".ztlog-dev"
	}
	b := devBanner{devDir: filepath.Join(f.dataDir, "dev"), logDir: filepath.Join(f.dataDir, "log")}
	if err := devLogKey(&f, b.devDir); err != nil {
		return err
	}
	env, err := devIdentity(b.devDir, f.listen, &f.contract)
	if err != nil {
		return fmt.Errorf("dev trust domain: %w", err)
	}
	f.dataDir = b.logDir
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
	b.witnessed = f.witness.policy
	if b.witnessed == "" {
		stop, err := startDevWitness(b.devDir, cfg.Key, logger)
		if err != nil {
			return fmt.Errorf("dev witness: %w", err)
		}
		defer stop()
		f.witness.policy = filepath.Join(b.devDir, "witness.policy")
		b.witnessed = f.witness.policy + " (local witness " + devWitnessName + ")"
	}
	if err := f.witness.apply(&cfg, logger); err != nil {
		return err
	}
	b.trustPolicy = filepath.Join(b.devDir, "trust.policy")
	if err := writeTrustPolicy(b.trustPolicy, f.witness.policy, cfg.Key); err != nil {
		return fmt.Errorf("trust policy for auditors: %w", err)
	}
	b.origin, b.verifierKey, b.keyFile, b.policy, b.env = cfg.Key.Origin(), cfg.Key.VerifierKey, f.keyFile, f.contract.policyPath, env
	return serve(ctx, cfg, &f.contract, logger, func(st started) error {
		if err := registerDemoAgent(ctx, st); err != nil {
			return err
		}
		b.print(os.Stdout, st.addr)
		return nil
	})
}

// devLogKey creates the dev log's signing key (once) unless --key names one.
func devLogKey(f *serveFlags, devDir string) error {
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return err
	}
	if f.keyFile == "" {
		f.keyFile = filepath.Join(devDir, "log.key")
	}
	if _, err := os.Stat(f.keyFile); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	skey, _, err := ztlog.GenerateKey(devOrigin)
	if err != nil {
		return err
	}
	return ztlog.WriteKeyFile(f.keyFile, skey)
}

// registerDemoAgent registers the demo agent unless it is registered.
func registerDemoAgent(ctx context.Context, st started) error {
	reg := st.svc.Agents()
	// Registered (again) unless it is, alias included: a data dir from
	// before aliases gets the alias on its next start.
	if rec, ok := reg.Lookup(devAgentID.String()); ok && rec.Status == "registered" && slices.Contains(rec.Aliases, devAgentAlias) {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, _, _, err := reg.Commit(cctx, &api.AgentRequest{Op: entry.AgentRegister, ID: devAgentID.String(),
		Owner: "ztlog dev", Brokers: []string{devBrokerID.String()}, Labels: map[string]string{"env": "dev"},
		Aliases: []string{devAgentAlias}},
		devAdminID.String(), "ztlog-dev-setup", time.Now()); err != nil {
		return fmt.Errorf("register the demo agent: %w", err)
	}
	return nil
}

// devBanner is what ztlog dev prints once it listens.
type devBanner struct {
	devDir, logDir, keyFile        string
	origin, verifierKey            string
	witnessed, trustPolicy, policy string
	env                            *devenv.Env
}

func (b *devBanner) print(w io.Writer, listenAddr string) {
	host, port, _ := net.SplitHostPort(listenAddr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	base, secure := "http://"+addr, "https://"+addr
	agent, broker, bundle := b.env.SVID("agent"), b.env.SVID("broker"), b.env.BundlePEM
	fmt.Fprintf(w, `ztlog dev: serving the embedded default log and decision path

  origin        %s
  verifier key  %s
  log storage   %s
  log key       %s
  witnessed by  %s
  trust domain  spiffe://%s (SVIDs, bundle and JWT in %s)
  policy        %s (hot-reloaded on change; --policy-engine cedar for Cedar)
  demo agent    %s (registered, alias %s; may run demo.* actions)

Try (zt and ztlog are in ./bin after make build):
  zt decide --server %s --svid %s --action demo.echo --resource demo://hello
  zt decide --server %s --svid %s --action aws.ec2.terminate_instances --resource i-demo
  zt decide --server %s --svid %s --action search.deep --resource corpus://all --user-token %s
  zt run --server %s --svid %s --model anthropic/claude-sonnet-4 \
       --action demo.echo --resource demo://hello -- echo hi
       (decides with a runtime attestation, runs it sandboxed in a local broker
       with the SVID %s, commits the result; see contract/broker/broker.md)
  zt broker --server %s --svid %s --listen 127.0.0.1:8444
  zt mcp proxy --server %s --svid %s --model anthropic/claude-sonnet-4 \
       -- npx -y @modelcontextprotocol/server-everything
       (the MCP gateway, for an MCP client to launch: tools/call echo is
       allowed, get-sum denied; see contract/gateway/mcp/gateway.md)
  curl --cacert %s -H "Authorization: Bearer $(cat %s)" \
       -H 'Content-Type: application/json' https://%s/actions \
       -d '{"actor":"%s","action":"demo.echo","resource":"demo://hello"}'
       (the existing ZT JS SDK's request, unmodified: the actor is the demo
       agent's alias, or its SPIFFE ID)
  curl %s/log/checkpoint
  curl %s/.well-known/ztlog
  curl %s/readyz
  curl %s/v1/entries/0
  open %s/ui/ in a browser: the evidence explorer, verifying the log in the page
       (zt-audit explore --log %s --policy %s: the same, against your policy)
  zt-audit audit --log %s/log/ --policy %s --spiffe-bundle %s
  zt-audit bundle --log %s/log/ --policy %s --spiffe-bundle %s --index N --out action.bundle
  zt-audit verify action.bundle --policy %s --spiffe-bundle %s
       (N: the decision's log index, as zt decide / zt run print it)

The contract (POST /v1/actions, /actions, /v1/agents) is served over HTTPS
(%s); the public read-only log API over plain HTTP on the same port.
Stop with Ctrl-C; the log is kept in %s and continues on the next start.
`, b.origin, b.verifierKey, b.logDir, b.keyFile, b.witnessed, devTrustDomain.Name(), b.devDir, b.policy, devAgentID, devAgentAlias,
		secure, agent, secure, agent, secure, agent, b.env.UserJWT,
		secure, agent, broker, secure, broker,
		secure, agent,
		bundle, b.env.AgentJWT, addr, devAgentAlias,
		base, base, base, base, base, base, b.trustPolicy, base, b.trustPolicy, bundle,
		base, b.trustPolicy, bundle, b.trustPolicy, bundle, secure, b.logDir)
}

// devIdentity creates (or refreshes) the dev environment under dir and
// points the contract flags the operator left unset at it.
func devIdentity(dir, listen string, cf *contractFlags) (*devenv.Env, error) {
	policies, err := fs.Sub(devPolicy, "devpolicy")
	if err != nil {
		return nil, err
	}
	env, err := devenv.Create(dir, listen, policies)
	if err != nil {
		return nil, err
	}
	setDefault(&cf.userIssuer, devenv.UserIssuer)
	setDefault(&cf.userJWKS, env.UserJWKS)
	setDefault(&cf.identity, "files")
	setDefault(&cf.svidCert, env.SVID("server")+".pem")
	setDefault(&cf.svidKey, env.SVID("server")+".key")
	setDefault(&cf.bundle, env.BundleJSON)
	setDefault(&cf.admins, devAdminID.String())
	setDefault(&cf.policyPath, env.Policy(cf.policyEngine))
	setDefault(&cf.policyRevision, "dev")
	setDefault(&cf.receiptKey, env.ReceiptKey)
	setDefault(&cf.defaultBroker, devBrokerID.String())
	return env, nil
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// devHelp is ztlog dev -h.
var devHelp = cli.Help{Usage: "ztlog dev [--data-dir DIR] [--listen ADDR] [flags]",
	About: `Start the embedded default for trying ztlog out: a log with its own key,
a local witness, a dev SPIFFE trust domain (CA, SVIDs for a server, a demo
agent, a demo broker and an admin), a receipt key, the example policy and a
delegated-user token, all created under --data-dir on the first start and
kept (SVIDs are reissued at every start). The demo agent is registered, and
the decision path is served over HTTPS with the read API on the same port.
Not for production. Every serve flag applies; the ones dev fills in
(identity, policy, receipt key, witness) may be given to override it.`}
