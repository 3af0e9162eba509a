package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/receipt"
	service "github.com/zt-infra/ztlog/contract/server"
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
	fs.StringVar(&f.receiptKey, "receipt-key", "", "receipt signing key `file`, a private JWK (create one with ztlog receipt-keygen)")
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
		src, err := identity.FromWorkloadAPI(ctx, f.workloadAPI, f.identityTimeout)
		if errors.Is(err, identity.ErrNoWorkloadAPI) {
			return nil, usageError{fmt.Errorf("%w: set --workload-api or SPIFFE_ENDPOINT_SOCKET", err)}
		}
		return src, err
	}
	return nil, nil
}

// decision turns the flags into the decision path's configuration.
func (f *contractFlags) decision(src identity.Source) (*service.DecisionPath, error) {
	var admins []spiffeid.ID
	for _, a := range splitList(f.admins) {
		id, err := spiffeid.FromString(a)
		if err != nil {
			return nil, usageError{fmt.Errorf("--admin %q: %w", a, err)}
		}
		admins = append(admins, id)
	}
	if f.policyPath == "" {
		return nil, usageError{errors.New("--policy is required with an identity source (a directory of .rego files, or an OPA bundle)")}
	}
	if _, ok := pdp.Engines[f.policyEngine]; !ok {
		return nil, usageError{fmt.Errorf("--policy-engine %q: want opa or cedar", f.policyEngine)}
	}
	if (f.userIssuer == "") != (f.userJWKS == "") {
		return nil, usageError{errors.New("delegated users need both --user-issuer and --user-jwks")}
	}
	if f.receiptKey == "" {
		return nil, usageError{errors.New("--receipt-key is required with an identity source (create one with `ztlog receipt-keygen --out FILE`)")}
	}
	rk, err := receipt.LoadKey(f.receiptKey)
	if err != nil {
		return nil, err
	}
	keys := receipt.NewKeyset(rk)
	for _, path := range splitList(f.receiptPrevious) {
		old, err := receipt.LoadKey(path)
		if err != nil {
			return nil, err
		}
		// Anything it signed was signed before this start, so it has
		// expired once receipt-ttl has passed.
		keys.Retire(old.Public(), time.Now().Add(f.receiptTTL+time.Minute))
	}
	return &service.DecisionPath{
		Identity:    src,
		JWTAudience: f.jwtAudience,
		Admins:      admins,
		Policy: pdp.ManagerConfig{Engine: f.policyEngine, Path: f.policyPath, Revision: f.policyRevision,
			Timeout: f.policyTimeout},
		Users:           service.UserTokens{Issuer: f.userIssuer, JWKSFile: f.userJWKS, Audience: f.userAudience},
		Guardrails:      f.guardrails,
		Receipts:        keys,
		DefaultBroker:   f.defaultBroker,
		DecisionTimeout: f.decisionTimeout,
		ReceiptTTL:      f.receiptTTL,
		CheckpointWait:  f.checkpointWait,
		WitnessWait:     f.witnessWait,
	}, nil
}

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
