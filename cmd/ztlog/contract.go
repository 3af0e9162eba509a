package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/guardrail"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/contract/receipt"
	service "github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/log/httpread"
)

// contractFlags configure the decision path (the adapter contract). Without
// an identity source, `ztlog serve` serves the read-only log only.
type contractFlags struct {
	identity        string
	svidCert        string
	svidKey         string
	bundle          string
	jwtBundle       string
	workloadAPI     string
	identityTimeout time.Duration
	jwtAudience     string
	admins          string
	policyEngine    string
	policyPath      string
	policyRevision  string
	policyTimeout   time.Duration
	receiptKey      string
	receiptPrevious string
	receiptTTL      time.Duration
	defaultBroker   string
	decisionTimeout time.Duration
	checkpointWait  time.Duration
	witnessWait     time.Duration
	plainHTTPReads  bool
	userIssuer      string
	userJWKS        string
	userAudience    string
	guardrails      bool
	// readOnly (`ztlog serve --read-only`): serve the log's read API
	// without an identity source, on purpose.
	readOnly bool
	// witnesses, set from the witness flags, makes witnessed assurance
	// possible (nil: a witnessed allow is a committed deny).
	witnesses gate.Witnesses
}

func (f *contractFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.identity, "identity", "", "identity source: files, workload-api or none (default: files when --svid-cert is set, workload-api when --workload-api or SPIFFE_ENDPOINT_SOCKET is set, else none = read-only log)")
	fs.StringVar(&f.svidCert, "svid-cert", "", "server X.509-SVID chain, PEM (identity files)")
	fs.StringVar(&f.svidKey, "svid-key", "", "server X.509-SVID private key, PEM PKCS#8 (identity files)")
	fs.StringVar(&f.bundle, "bundle", "", "trust bundle: PEM certificates or a SPIFFE bundle JSON with x509-svid and jwt-svid keys (identity files)")
	fs.StringVar(&f.jwtBundle, "jwt-bundle", "", "JWT authorities as a SPIFFE bundle / JWKS, when --bundle is PEM (identity files)")
	fs.StringVar(&f.workloadAPI, "workload-api", "", "SPIFFE Workload API address, unix:///path (default $SPIFFE_ENDPOINT_SOCKET)")
	fs.DurationVar(&f.identityTimeout, "identity-timeout", 10*time.Second, "how long to wait for the first SVID from the Workload API")
	fs.StringVar(&f.jwtAudience, "jwt-audience", "", "audience a JWT-SVID must carry (default: the server's own SPIFFE ID)")
	fs.StringVar(&f.admins, "admin", "", "comma-separated SPIFFE IDs allowed to register and revoke agents")
	fs.StringVar(&f.policyEngine, "policy-engine", "opa", "policy engine: opa or cedar")
	fs.StringVar(&f.policyPath, "policy", "", "policy: for opa a directory of .rego files and data.json, or an OPA bundle (.tar.gz); for cedar a directory of .cedar files and optional entities.json")
	fs.StringVar(&f.policyRevision, "policy-revision", "", "the operator's name for this policy version (committed with it)")
	fs.DurationVar(&f.policyTimeout, "policy-timeout", time.Second, "longest policy evaluation; slower is a deny")
	fs.StringVar(&f.receiptKey, "receipt-key", "", "receipt signing key, a private JWK (create with `ztlog receipt-keygen`)")
	fs.StringVar(&f.receiptPrevious, "receipt-previous-keys", "", "comma-separated JWK files of keys that signed before a rotation; published for --receipt-ttl after start")
	fs.DurationVar(&f.receiptTTL, "receipt-ttl", gate.DefaultReceiptTTL, "receipt lifetime")
	fs.StringVar(&f.defaultBroker, "default-broker", "", "receipt audience (broker SPIFFE ID) when a request names none")
	fs.DurationVar(&f.decisionTimeout, "decision-timeout", gate.DefaultDecisionTimeout, "longest a decision (policy and commit) may take; longer is a 503, never an allow")
	fs.DurationVar(&f.checkpointWait, "checkpoint-wait", gate.DefaultCheckpointWait, "how long POST /actions waits for a checkpoint to put in audit.checkpoint")
	fs.DurationVar(&f.witnessWait, "witness-wait", gate.DefaultWitnessWait, "how long an allow policy marks witnessed waits for a cosigned checkpoint including it (then 503, no receipt)")
	fs.BoolVar(&f.plainHTTPReads, "plain-http-reads", true, "with TLS, also answer plain HTTP on the same port for the public read-only log API")
	fs.StringVar(&f.userIssuer, "user-issuer", "", "issuer (iss) of delegated user tokens (X-ZT-User-Token)")
	fs.StringVar(&f.userJWKS, "user-jwks", "", "JWKS file of the user token issuer's public keys")
	fs.StringVar(&f.userAudience, "user-audience", "", "audience a user token must carry (default: the server's SPIFFE ID)")
	fs.BoolVar(&f.guardrails, "guardrails", true, "inspect argument values sent in args (email, payment cards, cloud keys, private keys, JWTs, secrets)")
}

func (f *contractFlags) enabled() (string, error) {
	switch f.identity {
	case "":
		switch {
		case f.svidCert != "":
			return "files", nil
		case f.workloadAPI != "" || envSet("SPIFFE_ENDPOINT_SOCKET"):
			return "workload-api", nil
		}
		return "none", nil
	case "files", "workload-api", "none":
		return f.identity, nil
	}
	return "", usageError{fmt.Errorf("--identity %q: want files, workload-api or none", f.identity)}
}

// openIdentity opens the identity source (nil for none).
func (f *contractFlags) openIdentity(ctx context.Context) (identity.Source, error) {
	kind, err := f.enabled()
	if err != nil {
		return nil, err
	}
	switch kind {
	case "files":
		if f.svidCert == "" || f.svidKey == "" || f.bundle == "" {
			return nil, usageError{errors.New("identity files needs --svid-cert, --svid-key and --bundle")}
		}
		return identity.FromFiles(identity.Files{Cert: f.svidCert, Key: f.svidKey, Bundle: f.bundle, JWTBundle: f.jwtBundle})
	case "workload-api":
		return identity.FromWorkloadAPI(ctx, f.workloadAPI, f.identityTimeout)
	}
	return nil, nil
}

// mount wires the decision path into svc: identity, registry (rebuilt from
// the log), policy, receipt keys, gate.
func (f *contractFlags) mount(ctx context.Context, svc *service.Service, src identity.Source, logger *slog.Logger) (*gate.Gate, *agents.Registry, error) {
	svid, err := src.GetX509SVID()
	if err != nil {
		return nil, nil, fmt.Errorf("server SVID: %v", err)
	}
	aud := f.jwtAudience
	if aud == "" {
		aud = svid.ID.String()
	}
	auth, err := identity.NewAuthenticator(src, []string{aud})
	if err != nil {
		return nil, nil, err
	}
	var admins []spiffeid.ID
	for _, a := range splitList(f.admins) {
		id, err := spiffeid.FromString(a)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--admin %q: %v", a, err)}
		}
		admins = append(admins, id)
	}
	if f.policyPath == "" {
		return nil, nil, usageError{errors.New("--policy is required with an identity source (a directory of .rego files, or an OPA bundle)")}
	}
	if _, ok := pdp.Engines[f.policyEngine]; !ok {
		return nil, nil, usageError{fmt.Errorf("--policy-engine %q: want opa or cedar", f.policyEngine)}
	}
	// The version in force is committed as a policy entry before any
	// decision carries its hash.
	pm, err := pdp.NewManager(ctx, pdp.ManagerConfig{Engine: f.policyEngine, Path: f.policyPath, Revision: f.policyRevision,
		Timeout: f.policyTimeout, Commit: gate.PolicyCommitter(svc.Log(), f.decisionTimeout), Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	if err := pm.Watch(ctx, 0); err != nil {
		logger.Warn("policy files are not watched; reload with SIGHUP", "error", err.Error())
	}
	var users *identity.UserVerifier
	if f.userIssuer != "" || f.userJWKS != "" {
		if f.userIssuer == "" || f.userJWKS == "" {
			return nil, nil, usageError{errors.New("delegated users need both --user-issuer and --user-jwks")}
		}
		jwks, err := identity.LoadJWKS(f.userJWKS)
		if err != nil {
			return nil, nil, err
		}
		uaud := f.userAudience
		if uaud == "" {
			uaud = svid.ID.String()
		}
		if users, err = identity.NewUserVerifier(identity.UserConfig{Issuer: f.userIssuer, Keys: jwks, Audience: uaud}); err != nil {
			return nil, nil, err
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				pm.Reload(ctx, "sighup")
				// The user token issuer may have rotated its keys.
				if users != nil {
					if err := reloadUserJWKS(users, f.userJWKS); err != nil {
						logger.Error("user JWKS reload failed; the previous keys stay in use", "file", f.userJWKS, "error", err.Error())
					} else {
						logger.Info("user JWKS reloaded", "file", f.userJWKS)
					}
				}
				// A file identity is re-read too (the Workload API rotates by itself).
				if r, ok := src.(interface{ Reload() error }); ok {
					if err := r.Reload(); err != nil {
						logger.Error("identity files reload failed; the previous SVID and bundle stay in use", "error", err.Error())
					} else {
						logger.Info("identity files reloaded", "identity", src.Describe())
					}
				}
			}
		}
	}()
	svc.AddReadinessDetail("policy", func(context.Context) any { return pm.Status() })
	var scanner *guardrail.Scanner
	if f.guardrails {
		if scanner, err = guardrail.New(); err != nil {
			return nil, nil, err
		}
	}
	if f.receiptKey == "" {
		return nil, nil, usageError{errors.New("--receipt-key is required with an identity source (create one with `ztlog receipt-keygen --out FILE`)")}
	}
	rk, err := receipt.LoadKey(f.receiptKey)
	if err != nil {
		return nil, nil, err
	}
	keys := receipt.NewKeyset(rk)
	for _, path := range splitList(f.receiptPrevious) {
		old, err := receipt.LoadKey(path)
		if err != nil {
			return nil, nil, err
		}
		// Anything it signed was signed before this start, so it has
		// expired once receipt-ttl has passed.
		keys.Retire(old.Public(), time.Now().Add(f.receiptTTL+time.Minute))
	}
	// The agent registry, and which decisions already have a result
	// (POST /v1/results), are replayed from the log in one pass; that needs
	// a published checkpoint covering every entry, which (with witnesses)
	// needs them.
	reg := agents.New(svc.Log())
	res, err := results.New(results.Config{Log: svc.Log(), Auth: auth, Bundles: src, Logger: logger, Registerer: svc.Registry()})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, registryRebuildTimeout)
	err = svc.Log().Replay(rctx, func(i uint64, leaf []byte) error {
		if err := reg.Replay(i, leaf); err != nil {
			return err
		}
		return res.Replay(i, leaf)
	})
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("rebuild the agent registry and results from the log (within %s; are the witnesses reachable?): %w", registryRebuildTimeout, err)
	}
	g, err := gate.New(gate.Config{
		Log: svc.Log(), Auth: auth, Policy: pm, Agents: reg, Keys: keys, Users: users, Guardrails: scanner, Bundles: src,
		Admins: admins, DefaultBroker: f.defaultBroker, DecisionTimeout: f.decisionTimeout,
		ReceiptTTL: f.receiptTTL, CheckpointWait: f.checkpointWait, Logger: logger, Registerer: svc.Registry(),
		Witnesses: f.witnesses, WitnessWait: f.witnessWait,
	})
	if err != nil {
		return nil, nil, err
	}
	g.Register(svc.Router())
	svc.SetReceiptJWKS(g.JWKS)
	// Brokers report results (POST /v1/results).
	res.Register(svc.Router())
	svc.SetBundleSources(httpread.BundleSources{Result: res.ResultOf, Roots: src})
	svc.AddReadinessCheck("identity", func(context.Context) error { return src.Check() })
	v := pm.Status()
	logger.Info("decision path ready", "identity", src.Describe(), "server_id", svid.ID.String(), "jwt_audience", aud,
		"policy_engine", v.Engine, "policy_hash", v.Hash, "policy_source", v.Source, "receipt_kid", rk.ID(), "agents", reg.Len())
	return g, reg, nil
}

// registryRebuildTimeout bounds the replay of the agent registry at start.
const registryRebuildTimeout = 2 * time.Minute

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envSet(name string) bool { return os.Getenv(name) != "" }

// reloadUserJWKS re-reads the user token issuer's JWKS file into users; on
// any error the keys in use stay.
func reloadUserJWKS(users *identity.UserVerifier, path string) error {
	jwks, err := identity.LoadJWKS(path)
	if err != nil {
		return err
	}
	return users.SetKeys(jwks)
}
