// Package conformance is the adapter contract's conformance suite: it runs
// the contract's normative checks against any implementation of it, over
// the network, as an agent (and, when given one, a broker) would see it.
//
// Each check has a stable ID (ZT-AUTH-001, ...) and cites the MUST of the
// contract it tests; the MUSTs and the checks are listed in README.md next
// to this file. A check passes, fails (with what was seen), or is skipped
// (with why: an identity it needs was not given, or a check it builds on
// failed). A skipped check is never reported as passing.
//
// The suite commits entries to the log under test (denies, allows, and a
// result when a broker identity is given). Its "nothing was committed"
// checks read the log size before and after through the public read API
// and bracket each refused request with a committed deny, so run it
// against a log nobody else writes to at the same time.
package conformance

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Status of a check.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check describes one normative check.
type Check struct {
	// ID is stable across versions, e.g. "ZT-AUTH-001".
	ID string `json:"id"`
	// Title says what is checked.
	Title string `json:"title"`
	// Must cites the requirement: "contract/conformance/README.md#<anchor>".
	Must string `json:"must"`
}

// Result is the outcome of one check.
type Result struct {
	Check
	Status Status `json:"status"`
	// Detail says what was seen: why it failed or was skipped, or the
	// evidence a pass rests on (log indexes).
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Report is the outcome of a run.
type Report struct {
	Target  string   `json:"target"`
	Started string   `json:"started"`
	Results []Result `json:"results"`
}

// Failed lists the IDs of the checks that failed, in run order.
func (r *Report) Failed() []string {
	var ids []string
	for _, c := range r.Results {
		if c.Status == Fail {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Count returns how many checks ended with status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Results {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Config says what to test and as whom.
type Config struct {
	// Target is the implementation's base URL, https://host:port.
	Target string
	// Agent is the agent identity the suite acts as (a registered agent
	// of the target) and Bundles the trust bundle that verifies the
	// target's X.509-SVID.
	Agent   x509svid.Source
	Bundles x509bundle.Source
	// ServerID is the target's SPIFFE ID (zero: any member of the agent's
	// trust domain).
	ServerID spiffeid.ID
	// JWT, when set, is the agent's JWT-SVID (audience: the target); the
	// compatibility check then authenticates with it as a bearer token, as
	// the ZT JavaScript SDK does. Otherwise it uses the X.509-SVID.
	JWT string
	// Broker, when set, is a broker identity the target knows (the agent
	// may hand it work); the result checks act as it. Without it they are
	// skipped.
	Broker x509svid.Source
	// AllowAction and DenyAction are actions the target's policy allows
	// and denies for the agent on Resource. Defaults fit the example
	// policy of `ztlog dev`: demo.echo, aws.ec2.terminate_instances,
	// demo://conformance.
	AllowAction, DenyAction, Resource string
	// Timeout bounds each request and each wait for a checkpoint
	// (default 15s).
	Timeout time.Duration
	// Now is the clock receipts are checked with (default time.Now).
	Now func() time.Time
}

// ErrConfig: the configuration cannot run the suite.
var ErrConfig = errors.New("conformance: bad configuration")

func (c *Config) defaults() error {
	if !strings.HasPrefix(c.Target, "https://") {
		return errors.Join(ErrConfig, errors.New("the target must be an https:// URL (the contract is served over TLS)"))
	}
	if c.Agent == nil || c.Bundles == nil {
		return errors.Join(ErrConfig, errors.New("an agent identity and a trust bundle are required"))
	}
	c.Target = strings.TrimSuffix(c.Target, "/")
	if c.AllowAction == "" {
		c.AllowAction = "demo.echo"
	}
	if c.DenyAction == "" {
		c.DenyAction = "aws.ec2.terminate_instances"
	}
	if c.Resource == "" {
		c.Resource = "demo://conformance"
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Run runs every check against the target, in order, and reports. It
// returns an error only for a configuration it cannot run with; a target
// that does not answer fails its checks.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s, err := newSuite(cfg)
	if err != nil {
		return nil, err
	}
	rep := &Report{Target: cfg.Target, Started: cfg.Now().UTC().Format(time.RFC3339)}
	for _, c := range checks {
		start := time.Now()
		res := Result{Check: c.Check}
		if dep := s.unmet(c.needs); dep != "" {
			res.Status, res.Detail = Skip, dep
		} else {
			detail, err := c.run(ctx, s)
			switch {
			case errors.Is(err, errSkip):
				res.Status, res.Detail = Skip, strings.TrimPrefix(err.Error(), errSkip.Error()+": ")
			case err != nil:
				res.Status, res.Detail = Fail, err.Error()
			default:
				res.Status, res.Detail = Pass, detail
			}
		}
		res.Duration = time.Since(start)
		s.status[c.ID] = res.Status
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// Checks lists every check of the suite, in run order.
func Checks() []Check {
	out := make([]Check, len(checks))
	for i, c := range checks {
		out[i] = c.Check
	}
	return out
}

// errSkip marks a check that could not run for a reason that is not the
// target's fault (an identity was not given).
var errSkip = errors.New("skip")

// unmet names the first check of needs that did not pass.
func (s *suite) unmet(needs []string) string {
	for _, id := range needs {
		if st := s.status[id]; st != Pass {
			return "not run: it builds on " + id + ", which did not pass"
		}
	}
	return ""
}
