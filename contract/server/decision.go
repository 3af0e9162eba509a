package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/gate"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/guardrail"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/results"
	"github.com/zt-infra/ztlog/contract/receipt"
)

// DefaultRebuildTimeout bounds the replay of the agent registry and the
// results index from the log at start.
const DefaultRebuildTimeout = 2 * time.Minute

// DecisionPath configures the decision path (the adapter contract): POST
// /v1/actions, /actions, /v1/results and /v1/agents. Without it (a nil
// Config.Decision) the service is a read-only log.
type DecisionPath struct {
	// Identity is the server's SVID and the trust bundles that authenticate
	// callers. Required.
	Identity identity.Source
	// JWTAudience is the audience a JWT-SVID must carry. Default: the
	// server's own SPIFFE ID.
	JWTAudience string
	// Admins may register and revoke agents.
	Admins []spiffeid.ID
	// Policy loads the policy from a file or directory and commits each
	// version that comes into force as a policy entry before any decision
	// carries its hash; Reload re-reads it. Its Commit and Logger are set
	// by the service.
	Policy pdp.ManagerConfig
	// PDP, when set, is a fixed policy used instead of Policy: no policy
	// entry is committed and Reload leaves it alone (tests, embedding).
	PDP *pdp.PDP
	// Users verifies delegated user tokens (X-ZT-User-Token); zero: none.
	Users UserTokens
	// Guardrails scans argument values sent in "args".
	Guardrails bool
	// Receipts signs receipts; its keys are published in the JWKS.
	// Required.
	Receipts *receipt.Keyset
	// DefaultBroker is the receipt audience when a request names none.
	DefaultBroker string
	// DecisionTimeout, ReceiptTTL and CheckpointWait tune the gate (zero:
	// the gate package's defaults).
	DecisionTimeout time.Duration
	ReceiptTTL      time.Duration
	CheckpointWait  time.Duration
	// WitnessWait bounds how long an allow the policy marks witnessed
	// waits for a cosigned checkpoint that includes it (default
	// gate.DefaultWitnessWait). Witnessed assurance needs
	// Config.Witnessing; without it such an allow is a committed deny.
	WitnessWait time.Duration
	// RebuildTimeout bounds the replay of agents and results from the log
	// at start (it needs a checkpoint covering every entry, which with
	// witnesses needs them). Default DefaultRebuildTimeout.
	RebuildTimeout time.Duration
	// FollowInterval is how often the published checkpoint is read to
	// apply entries other frontends of the same log appended (agents,
	// results, policy versions). Default DefaultFollowInterval.
	FollowInterval time.Duration
}

// UserTokens configures delegated user tokens: the issuer, its JWKS file
// (re-read by Reload when the issuer rotates keys) and the audience.
type UserTokens struct {
	Issuer   string
	JWKSFile string
	// Audience a user token must carry. Default: the server's SPIFFE ID.
	Audience string
	// Verifier, when set, is used instead of the fields above (and is not
	// reloaded).
	Verifier *identity.UserVerifier
}

// ErrUserTokens is returned for a UserTokens with only one of Issuer and
// JWKSFile.
var ErrUserTokens = errors.New("delegated users need both an issuer and a JWKS file")

// mountedPath is the mounted decision path.
type mountedPath struct {
	cfg     *DecisionPath
	gate    *gate.Gate
	agents  *agents.Registry
	results *results.Service
	policy  *pdp.Manager // nil with a fixed PDP
	users   *identity.UserVerifier
	follow  *follower
}

// mountDecision builds the decision path over the open log and adds its
// routes: identity, policy (committed), agents and results (rebuilt from
// the log), receipt keys, gate.
func (s *Service) mountDecision(ctx context.Context, d *DecisionPath) error {
	if d.Identity == nil {
		return errors.New("service: the decision path needs an identity source")
	}
	if d.Receipts == nil {
		return errors.New("service: the decision path needs a receipt key")
	}
	svid, err := d.Identity.GetX509SVID()
	if err != nil {
		return fmt.Errorf("server SVID: %w", err)
	}
	aud := d.JWTAudience
	if aud == "" {
		aud = svid.ID.String()
	}
	auth, err := identity.NewAuthenticator(d.Identity, []string{aud})
	if err != nil {
		return err
	}
	p := &mountedPath{cfg: d}
	pdpFixed := d.PDP
	if pdpFixed == nil {
		mc := d.Policy
		mc.Commit = gate.PolicyCommitter(s.log, d.DecisionTimeout)
		if s.cfg.PolicyStore != nil {
			mc.Commit = storingCommit(s.cfg.PolicyStore, mc.Commit)
		} else {
			s.logger.Warn("policy sources are not stored: GET /v1/policies/{hash} will answer 404 and decisions cannot be replayed from this service")
		}
		mc.Logger = s.logger
		if p.policy, err = pdp.NewManager(ctx, mc); err != nil {
			return err
		}
		if err := p.policy.Watch(ctx, 0); err != nil {
			s.logger.Warn("policy files are not watched; reload with SIGHUP", "error", err.Error())
		}
		s.addDetail("policy", func(context.Context) any { return p.policy.Status() })
	}
	if p.users, err = d.Users.verifier(svid.ID.String()); err != nil {
		return err
	}
	var scanner *guardrail.Scanner
	if d.Guardrails {
		if scanner, err = guardrail.New(); err != nil {
			return err
		}
	}
	p.agents = agents.New(s.log)
	if p.results, err = results.New(results.Config{Log: s.log, Auth: auth, Bundles: d.Identity, Logger: s.logger, Registerer: s.registry,
		Claims: s.cfg.ResultClaims}); err != nil {
		return err
	}
	p.follow = newFollower(p, s, d.FollowInterval)
	if err := p.rebuild(ctx); err != nil {
		return err
	}
	go p.follow.run(untilClosed(ctx, s))
	s.addCheck("follow", p.follow.checkFollow)
	if p.policy != nil {
		s.addCheck("policy", p.follow.checkPolicy)
	}
	var witnesses gate.Witnesses
	if s.cfg.Witnessing != nil {
		witnesses = s.cfg.Witnessing
	}
	p.gate, err = gate.New(gate.Config{
		Log: s.log, Auth: auth, PDP: pdpFixed, Policy: p.policy, Agents: p.agents, Keys: d.Receipts, Users: p.users,
		Guardrails: scanner, Bundles: d.Identity, Admins: d.Admins, DefaultBroker: d.DefaultBroker,
		DecisionTimeout: d.DecisionTimeout, ReceiptTTL: d.ReceiptTTL, CheckpointWait: d.CheckpointWait,
		Witnesses: witnesses, WitnessWait: d.WitnessWait,
		Logger: s.logger, Registerer: s.registry,
	})
	if err != nil {
		return err
	}
	p.gate.Register(s.router)
	p.results.Register(s.router)
	s.receiptJWKS = p.gate.JWKS
	s.bundles.result, s.bundles.roots = p.results.ResultOf, d.Identity
	s.addCheck("identity", func(context.Context) error { return d.Identity.Check() })
	s.decision = p
	attrs := []any{"identity", d.Identity.Describe(), "server_id", svid.ID.String(), "jwt_audience", aud, "agents", p.agents.Len()}
	if p.policy != nil {
		v := p.policy.Status()
		attrs = append(attrs, "policy_engine", v.Engine, "policy_hash", v.Hash, "policy_source", v.Source)
	}
	s.logger.Info("decision path ready", attrs...)
	return nil
}

// rebuild replays the agent registry, which decisions already have a
// result and the latest policy version from the log, in one pass; the
// follower then keeps them current.
func (p *mountedPath) rebuild(ctx context.Context) error {
	timeout := p.cfg.RebuildTimeout
	if timeout <= 0 {
		timeout = DefaultRebuildTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.follow.rebuild(rctx); err != nil {
		return fmt.Errorf("rebuild the agent registry and results from the log (within %s; are the witnesses reachable?): %w", timeout, err)
	}
	return nil
}

// untilClosed is ctx, also ended when the service's log is closed.
func untilClosed(ctx context.Context, s *Service) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
		case <-s.log.Closed():
		}
	}()
	return ctx
}

// verifier builds the user token verifier (nil when none is configured).
func (u UserTokens) verifier(serverID string) (*identity.UserVerifier, error) {
	if u.Verifier != nil {
		return u.Verifier, nil
	}
	if u.Issuer == "" && u.JWKSFile == "" {
		return nil, nil
	}
	if u.Issuer == "" || u.JWKSFile == "" {
		return nil, ErrUserTokens
	}
	jwks, err := identity.LoadJWKS(u.JWKSFile)
	if err != nil {
		return nil, err
	}
	aud := u.Audience
	if aud == "" {
		aud = serverID
	}
	return identity.NewUserVerifier(identity.UserConfig{Issuer: u.Issuer, Keys: jwks, Audience: aud})
}

// Agents is the agent registry of the decision path (nil for a read-only
// log).
func (s *Service) Agents() *agents.Registry {
	if s.decision == nil {
		return nil
	}
	return s.decision.agents
}

// Gate is the decision service (nil for a read-only log).
func (s *Service) Gate() *gate.Gate {
	if s.decision == nil {
		return nil
	}
	return s.decision.gate
}

// Results is the results service (nil for a read-only log).
func (s *Service) Results() *results.Service {
	if s.decision == nil {
		return nil
	}
	return s.decision.results
}

// Reload re-reads what an operator may change while the service runs (on
// SIGHUP): the policy files, the user token issuer's JWKS and file
// identities (the Workload API rotates by itself). On any error the
// previous version stays in use and the error is logged.
func (s *Service) Reload(ctx context.Context, reason string) {
	p := s.decision
	if p == nil {
		return
	}
	if p.policy != nil {
		p.policy.Reload(ctx, reason)
	}
	if file := p.cfg.Users.JWKSFile; p.users != nil && file != "" {
		if err := reloadJWKS(p.users, file); err != nil {
			s.logger.Error("user JWKS reload failed; the previous keys stay in use", "file", file, "error", err.Error())
		} else {
			s.logger.Info("user JWKS reloaded", "file", file)
		}
	}
	if r, ok := p.cfg.Identity.(interface{ Reload() error }); ok {
		if err := r.Reload(); err != nil {
			s.logger.Error("identity files reload failed; the previous SVID and bundle stay in use", "error", err.Error())
		} else {
			s.logger.Info("identity files reloaded", "identity", p.cfg.Identity.Describe())
		}
	}
}

func reloadJWKS(users *identity.UserVerifier, path string) error {
	jwks, err := identity.LoadJWKS(path)
	if err != nil {
		return err
	}
	return users.SetKeys(jwks)
}
