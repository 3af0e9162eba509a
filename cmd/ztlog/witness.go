package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	service "github.com/zt-infra/ztlog/contract/server"
	"github.com/zt-infra/ztlog/internal/netguard"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/witnessing"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/server"
	"github.com/zt-infra/ztlog/witness/state"
)

// witnessFlags are the witnessing flags of `ztlog serve` and `ztlog dev`.
type witnessFlags struct {
	policy   string
	timeout  time.Duration
	failOpen bool
}

func (w *witnessFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.policy, "witness-policy", "", "trust policy file (C2SP tlog-policy: witness <name> <vkey> <url>, group, quorum); checkpoints are published only with the quorum's cosignatures")
	fs.DurationVar(&w.timeout, "witness-timeout", 5*time.Second, "how long one round of collecting cosignatures may take")
	fs.BoolVar(&w.failOpen, "witness-fail-open", false, "publish checkpoints even without the witness quorum (NOT for production: logged loudly)")
}

// apply reads the policy (if any) into cfg: the witness group, and the
// witnesses' readiness check, report and metrics.
func (w *witnessFlags) apply(cfg *service.Config, logger *slog.Logger) error {
	if w.policy == "" {
		if w.failOpen {
			return usageError{fmt.Errorf("--witness-fail-open needs --witness-policy")}
		}
		return nil
	}
	text, err := os.ReadFile(w.policy)
	if err != nil {
		return usageError{fmt.Errorf("--witness-policy: %w", err)}
	}
	return applyPolicy(cfg, text, w.policy, w.timeout, w.failOpen, logger)
}

func applyPolicy(cfg *service.Config, text []byte, name string, timeout time.Duration, failOpen bool, logger *slog.Logger) error {
	p, err := trustpolicy.Parse(text)
	if err != nil {
		return usageError{fmt.Errorf("--witness-policy %s: %w", name, err)}
	}
	c, err := witnessing.New(p, witnessing.Options{Origin: cfg.Key.Origin(), Timeout: timeout, FailOpen: failOpen, Logger: logger})
	if err != nil {
		return usageError{fmt.Errorf("--witness-policy %s: %w", name, err)}
	}
	cfg.WitnessPolicy, cfg.Witnessing = text, c
	logger.Info("witness policy", "file", name, "quorum", c.QuorumName(), "witnesses", len(p.Witnesses), "fail_open", failOpen)
	return nil
}

// devWitnessName is the name of `ztlog dev`'s local witness.
const devWitnessName = "localhost/ztlog-dev-witness"

// startDevWitness runs `ztlog dev`'s own witness in this process, on a
// loopback port, with its key and state under dir, cosigning the dev log.
// It writes the trust policy that makes the log use it to
// dir/witness.policy and returns stop, to be called once the log is closed.
func startDevWitness(dir string, key *ztlog.Key, logger *slog.Logger) (stop func(), err error) {
	keyFile := filepath.Join(dir, "witness.key")
	if _, err := os.Stat(keyFile); os.IsNotExist(err) {
		skey, _, err := cosigner.Generate(devWitnessName, cosigner.Ed25519)
		if err != nil {
			return nil, err
		}
		if err := cosigner.WriteKeyFile(keyFile, skey); err != nil {
			return nil, err
		}
	}
	c, err := cosigner.Load(keyFile)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse("dev witness", []byte(fmt.Sprintf(`{"logs":[{"origin":%q,"verifier_key":%q}]}`, key.Origin(), key.VerifierKey)))
	if err != nil {
		return nil, err
	}
	st, err := state.Open(filepath.Join(dir, "witness-state"))
	if err != nil {
		return nil, err
	}
	w, err := server.New(server.Options{Cosigners: []*cosigner.Cosigner{c}, Store: st, Config: func() *config.Config { return cfg },
		Logger: logger.With("component", "dev-witness")})
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	srv := netguard.Harden(&http.Server{Handler: w.Handler()})
	go srv.Serve(ln)
	stop = func() {
		srv.Close()
		st.Close()
	}
	text := fmt.Sprintf("# ztlog dev: the dev log and its local witness (regenerated at each start)\nlog %s\nwitness dev %s http://%s/\nquorum dev\n",
		key.VerifierKey, c.VerifierKey, ln.Addr())
	if err := os.WriteFile(filepath.Join(dir, "witness.policy"), []byte(text), 0o644); err != nil {
		stop()
		return nil, err
	}
	logger.Info("dev witness listening", "addr", ln.Addr().String(), "name", c.Name(), "verifier_key", c.VerifierKey)
	return stop, nil
}
