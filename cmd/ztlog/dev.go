package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/devca"
	ztlog "github.com/zt-infra/ztlog/log"
)

// devOrigin is the origin of the embedded default log.
const devOrigin = "localhost/ztlog-dev"

// The dev trust domain and its identities.
var (
	devTrustDomain = spiffeid.RequireTrustDomainFromString("dev.ztlog.local")
	devServerID    = spiffeid.RequireFromPath(devTrustDomain, "/ztlog")
	devAgentID     = spiffeid.RequireFromPath(devTrustDomain, "/agent/demo")
	devBrokerID    = spiffeid.RequireFromPath(devTrustDomain, "/broker/demo")
	devAdminID     = spiffeid.RequireFromPath(devTrustDomain, "/admin")
)

// devAgentAlias is the demo agent's actor name in the older ZT control
// plane: the existing ZT JS SDK sends it, unmodified, to POST /actions.
const devAgentAlias = "hello-world-agent"

// devSVIDTTL is the lifetime of the dev SVIDs; they are reissued at every start.
const devSVIDTTL = 24 * time.Hour

// The example policies ztlog dev writes (opa/ and cedar/); identical to
// testdata/policies (a test checks).
//
//go:embed devpolicy
var devPolicy embed.FS

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
	if err := devIdentity(devDir, f.listen, &f.contract); err != nil {
		return fmt.Errorf("dev trust domain: %w", err)
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
	if err := f.witness.apply(&cfg, logger); err != nil {
		return err
	}
	trustPolicy := filepath.Join(devDir, "trust.policy")
	if err := writeTrustPolicy(trustPolicy, f.witness.policy, cfg.Key); err != nil {
		return fmt.Errorf("trust policy for auditors: %v", err)
	}
	return serve(ctx, cfg, &f.contract, logger, func(st started) error {
		reg := st.svc.Agents()
		// Registered (again) unless it is, alias included: a data dir from
		// before aliases gets the alias on its next start.
		if rec, ok := reg.Lookup(devAgentID.String()); !ok || rec.Status != "registered" || !slices.Contains(rec.Aliases, devAgentAlias) {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, _, _, err := reg.Commit(cctx, &api.AgentRequest{Op: entry.AgentRegister, ID: devAgentID.String(),
				Owner: "ztlog dev", Brokers: []string{devBrokerID.String()}, Labels: map[string]string{"env": "dev"},
				Aliases: []string{devAgentAlias}},
				devAdminID.String(), "ztlog-dev-setup", time.Now()); err != nil {
				return fmt.Errorf("register the demo agent: %w", err)
			}
		}
		host, port, _ := net.SplitHostPort(st.addr)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		addr := net.JoinHostPort(host, port)
		base, secure := "http://"+addr, "https://"+addr
		fmt.Printf(`ztlog dev: serving the embedded default log and decision path

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
  zt-audit audit --log %s/log/ --policy %s --spiffe-bundle %s
  zt-audit bundle --log %s/log/ --policy %s --spiffe-bundle %s --index N --out action.bundle
  zt-audit verify action.bundle --policy %s --spiffe-bundle %s
       (N: the decision's log index, as zt decide / zt run print it)

The contract (POST /v1/actions, /actions, /v1/agents) is served over HTTPS
(%s); the public read-only log API over plain HTTP on the same port.
Stop with Ctrl-C; the log is kept in %s and continues on the next start.
`, cfg.Key.Origin(), cfg.Key.VerifierKey, logDir, f.keyFile, witnessed, devTrustDomain.Name(), devDir, f.contract.policyPath, devAgentID, devAgentAlias,
			secure, filepath.Join(devDir, "agent"), secure, filepath.Join(devDir, "agent"),
			secure, filepath.Join(devDir, "agent"), filepath.Join(devDir, "user.jwt"),
			secure, filepath.Join(devDir, "agent"), filepath.Join(devDir, "broker"), secure, filepath.Join(devDir, "broker"),
			secure, filepath.Join(devDir, "agent"),
			filepath.Join(devDir, "bundle.pem"), filepath.Join(devDir, "agent.jwt"), addr, devAgentAlias,
			base, base, base, base, base, trustPolicy, filepath.Join(devDir, "bundle.pem"),
			base, trustPolicy, filepath.Join(devDir, "bundle.pem"), trustPolicy, filepath.Join(devDir, "bundle.pem"), secure, logDir)
		return nil
	})
}

// devIdentity creates (once) the dev CA, receipt key and example policy
// under dir, issues fresh SVIDs and the agent's JWT-SVID, and points the
// contract flags at them.
func devIdentity(dir, listen string, cf *contractFlags) error {
	caDir := filepath.Join(dir, "ca")
	ca, err := devca.Load(caDir)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = devca.New(devTrustDomain); err == nil {
			err = ca.Save(caDir)
		}
	}
	if err != nil {
		return err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			ips = append(ips, ip)
		}
	}
	for name, id := range map[string]spiffeid.ID{"server": devServerID, "agent": devAgentID, "broker": devBrokerID, "admin": devAdminID} {
		o := devca.SVIDOptions{TTL: devSVIDTTL}
		if name == "server" {
			o.DNSNames, o.IPs = []string{"localhost"}, ips
		}
		svid, err := ca.IssueX509SVID(id, o)
		if err != nil {
			return err
		}
		if err := devca.WriteSVID(filepath.Join(dir, name), svid); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.pem"), pemCert(ca), 0o644); err != nil {
		return err
	}
	bundle, err := ca.Bundle().Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.json"), bundle, 0o644); err != nil {
		return err
	}
	jwt, err := ca.IssueJWTSVID(devAgentID, []string{devServerID.String()}, devSVIDTTL)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.jwt"), []byte(jwt+"\n"), 0o600); err != nil {
		return err
	}
	rk := filepath.Join(dir, "receipt.jwk")
	if _, err := os.Stat(rk); errors.Is(err, fs.ErrNotExist) {
		k, err := receipt.GenerateKey("")
		if err != nil {
			return err
		}
		if err := receipt.WriteKeyFile(rk, k); err != nil {
			return err
		}
	}
	for _, engine := range []string{"opa", "cedar"} {
		dst := filepath.Join(dir, "policy", engine)
		if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
			continue // keep the operator's edits
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		entries, _ := devPolicy.ReadDir("devpolicy/" + engine)
		for _, e := range entries {
			b, _ := devPolicy.ReadFile("devpolicy/" + engine + "/" + e.Name())
			if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
				return err
			}
		}
	}
	policyDir := filepath.Join(dir, "policy", cf.policyEngine)
	if err := devUserIssuer(dir); err != nil {
		return fmt.Errorf("dev user issuer: %w", err)
	}
	setDefault(&cf.userIssuer, devUserIssuerName)
	setDefault(&cf.userJWKS, filepath.Join(dir, "user-issuer.jwks"))
	if cf.identity == "" {
		cf.identity = "files"
	}
	setDefault(&cf.svidCert, filepath.Join(dir, "server.pem"))
	setDefault(&cf.svidKey, filepath.Join(dir, "server.key"))
	setDefault(&cf.bundle, filepath.Join(dir, "bundle.json"))
	setDefault(&cf.admins, devAdminID.String())
	setDefault(&cf.policyPath, policyDir)
	setDefault(&cf.policyRevision, "dev")
	setDefault(&cf.receiptKey, rk)
	setDefault(&cf.defaultBroker, devBrokerID.String())
	return nil
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func pemCert(ca *devca.CA) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate().Raw})
}

// devUserIssuerName is the issuer of the dev delegated-user tokens.
const devUserIssuerName = "https://users.dev.ztlog.local"

// devUserIssuer creates (once) a user token issuer key (user-issuer.jwk,
// its public JWKS user-issuer.jwks) and issues user.jwt: the user alice,
// scope search.deep, delegated to the demo agent, for a day.
func devUserIssuer(dir string) error {
	keyFile := filepath.Join(dir, "user-issuer.jwk")
	var jwk jose.JSONWebKey
	if b, err := os.ReadFile(keyFile); err == nil {
		if err := json.Unmarshal(b, &jwk); err != nil {
			return fmt.Errorf("%s: %v", keyFile, err)
		}
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		jwk = jose.JSONWebKey{Key: k, KeyID: "dev-user-issuer", Algorithm: "ES256", Use: "sig"}
		b, _ := json.Marshal(jwk)
		if err := os.WriteFile(keyFile, b, 0o600); err != nil {
			return err
		}
	}
	pub, _ := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "user-issuer.jwks"), pub, 0o644); err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return err
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": devUserIssuerName, "sub": "alice", "aud": devServerID.String(),
		"iat": now.Unix(), "exp": now.Add(devSVIDTTL).Unix(),
		"scope": "search.deep", "act": map[string]any{"sub": devAgentID.String()},
	}).Serialize()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "user.jwt"), []byte(tok+"\n"), 0o600)
}
