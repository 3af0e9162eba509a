// Package quorum is the log's side of witnessing: it turns a trust policy
// (internal/trustpolicy, C2SP tlog-policy) into the witness group Tessera
// collects cosignatures with before it publishes a checkpoint, and keeps
// track of how each witness answered so that operators can see why
// checkpoints are (not) being published.
//
// Fail closed is the default: a checkpoint without the quorum's
// cosignatures is not published, so entries wait, Await times out, and the
// decision path denies. FailOpen publishes anyway and says so loudly.
//
// Every witness in the policy needs a URL (its tlog-witness submission
// prefix); Tessera posts to <url>/add-checkpoint.
package witnessing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/tessera"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// Options configure New.
type Options struct {
	// Origin is the log's origin. If the policy lists logs, one of them must
	// be this one.
	Origin string
	// Timeout bounds one round of collecting cosignatures (Tessera's
	// default, 5s, when zero).
	Timeout time.Duration
	// FailOpen publishes checkpoints that lack the quorum. Never the
	// default; logged at WARN on every such checkpoint by Tessera and once
	// here at start.
	FailOpen bool
	// Transport carries the requests to witnesses (http.DefaultTransport
	// when nil).
	Transport http.RoundTripper
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Collector is a policy ready for Tessera, and the record of each
// witness's last answer.
type Collector struct {
	policy   *trustpolicy.Policy
	group    tessera.WitnessGroup
	opts     Options
	client   *http.Client
	byURL    map[string]*witnessState
	states   []*witnessState
	requests *prometheus.CounterVec
}

type witnessState struct {
	witness *trustpolicy.Witness
	url     string

	mu        sync.Mutex
	attempted time.Time // last answer or failure
	ok        bool      // last answer was a cosignature
	outcome   string
	lastOK    time.Time
}

// New builds the collector for a parsed policy.
func New(p *trustpolicy.Policy, opts Options) (*Collector, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if len(p.Logs) > 0 && opts.Origin != "" && p.LogFor(opts.Origin) == nil {
		return nil, fmt.Errorf("witness policy lists logs, but not this one (%s); add \"log <this log's verifier key>\" or remove the log lines", opts.Origin)
	}
	c := &Collector{policy: p, opts: opts, byURL: map[string]*witnessState{}}
	built := map[trustpolicy.Member]any{}
	for _, w := range p.Witnesses {
		if w.URL == "" {
			return nil, fmt.Errorf("witness policy: witness %q (line %d) has no URL; the log needs each witness's tlog-witness submission prefix (witness <name> <vkey> <url>)", w.Name, w.Line)
		}
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("witness policy: witness %q (line %d): URL %q is not http(s)", w.Name, w.Line, w.URL)
		}
		tw, err := tessera.NewWitness(w.VKey, u)
		if err != nil {
			return nil, fmt.Errorf("witness policy: witness %q (line %d): %w", w.Name, w.Line, err)
		}
		if o, dup := c.byURL[tw.URL]; dup {
			return nil, fmt.Errorf("witness policy: witnesses %q and %q have the same URL %s; each witness needs its own", o.witness.Name, w.Name, w.URL)
		}
		s := &witnessState{witness: w, url: tw.URL, outcome: "not contacted yet (witnesses are asked when the log publishes a checkpoint)"}
		c.byURL[tw.URL] = s
		c.states = append(c.states, s)
		built[w] = tw
	}
	for _, g := range p.Groups {
		tg := tessera.WitnessGroup{N: g.Threshold}
		for _, m := range g.Members {
			switch b := built[m].(type) {
			case tessera.Witness:
				tg.Components = append(tg.Components, b)
			case tessera.WitnessGroup:
				tg.Components = append(tg.Components, b)
			default:
				return nil, fmt.Errorf("witness policy: group %q member %q is unknown", g.Name, m.MemberName())
			}
		}
		built[g] = tg
	}
	switch q := built[p.Quorum].(type) {
	case nil:
		c.group = tessera.NewWitnessGroup(0)
	case tessera.Witness:
		c.group = tessera.NewWitnessGroup(1, q)
	case tessera.WitnessGroup:
		c.group = q
	}
	c.client = &http.Client{Transport: recorder{c}}
	c.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ztlog_witness_requests_total",
		Help: "Requests to witnesses for cosignatures, by witness and outcome (HTTP status, error, cancelled).",
	}, []string{"witness", "outcome"})
	if opts.FailOpen {
		opts.Logger.Warn("WITNESS FAIL-OPEN: checkpoints will be published even when the witness quorum is not met; "+
			"clients that require cosignatures will reject them. Configure the witness policy to fail closed (Options.FailOpen false).",
			"quorum", c.QuorumName(), "witnesses", len(c.states))
	}
	return c, nil
}

// Metrics is the collector's Prometheus metric
// (ztlog_witness_requests_total{witness,outcome}) for the caller to register.
func (c *Collector) Metrics() prometheus.Collector { return c.requests }

// Group is the witness group to give Tessera (log.Options.Witnesses).
func (c *Collector) Group() *tessera.WitnessGroup { return &c.group }

// WitnessOptions are Tessera's options (log.Options.WitnessOptions).
func (c *Collector) WitnessOptions() *tessera.WitnessOptions {
	return &tessera.WitnessOptions{Timeout: c.opts.Timeout, FailOpen: c.opts.FailOpen}
}

// HTTPClient is the client the log's storage must use for outgoing
// requests (storage.Config.HTTPClient), so that witness answers are seen.
func (c *Collector) HTTPClient() *http.Client { return c.client }

// Policy is the policy the collector was built from.
func (c *Collector) Policy() *trustpolicy.Policy { return c.policy }

// QuorumName is the policy's quorum ("none" when no cosignature is needed).
func (c *Collector) QuorumName() string {
	if c.policy.Quorum == nil {
		return trustpolicy.None
	}
	return c.policy.Quorum.MemberName()
}

// recorder notes the outcome of every request to a known witness URL.
type recorder struct{ c *Collector }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := r.c.byURL[req.URL.String()]
	resp, err := r.c.opts.Transport.RoundTrip(req)
	if s == nil {
		return resp, err
	}
	now := r.c.opts.Now()
	var outcome string
	ok := false
	switch {
	case err != nil && errors.Is(req.Context().Err(), context.Canceled):
		// Tessera cancels the others once the quorum is met; that says
		// nothing about this witness.
		r.c.requests.WithLabelValues(s.witness.Name, "not_awaited").Inc()
		return resp, err
	case err != nil && errors.Is(req.Context().Err(), context.DeadlineExceeded):
		outcome = fmt.Sprintf("no answer within the witness timeout: %v", err)
		r.c.requests.WithLabelValues(s.witness.Name, "timeout").Inc()
	case err != nil:
		outcome = "unreachable: " + err.Error()
		r.c.requests.WithLabelValues(s.witness.Name, "error").Inc()
	case resp.StatusCode == http.StatusOK:
		ok, outcome = true, "cosigned"
		r.c.requests.WithLabelValues(s.witness.Name, "200").Inc()
	case resp.StatusCode == http.StatusConflict:
		// Part of the protocol: Tessera retries with the witness's size.
		r.c.requests.WithLabelValues(s.witness.Name, "409").Inc()
		return resp, err
	default:
		outcome = fmt.Sprintf("refused: HTTP %d%s", resp.StatusCode, meaning(resp.StatusCode))
		r.c.requests.WithLabelValues(s.witness.Name, fmt.Sprint(resp.StatusCode)).Inc()
	}
	s.mu.Lock()
	changed := s.attempted.IsZero() || s.ok != ok || (!ok && s.outcome != outcome)
	s.attempted, s.ok, s.outcome = now, ok, outcome
	if ok {
		s.lastOK = now
	}
	s.mu.Unlock()
	if changed {
		// One line per change of a witness's state, not per request.
		if ok {
			r.c.opts.Logger.Info("witness cosigning", "witness", s.witness.Name, "url", s.witness.URL)
		} else {
			r.c.opts.Logger.Warn("witness not cosigning", "witness", s.witness.Name, "url", s.witness.URL,
				"outcome", outcome, "quorum", r.c.QuorumName())
		}
	}
	return resp, err
}

func meaning(status int) string {
	switch status {
	case http.StatusNotFound:
		return " (the witness does not know this log's origin)"
	case http.StatusForbidden:
		return " (the witness does not accept this log's key)"
	case http.StatusUnprocessableEntity:
		return " (the witness says the checkpoint is not consistent with what it cosigned: investigate a possible fork)"
	case http.StatusBadRequest:
		return " (malformed request)"
	}
	return ""
}

// WitnessStatus is one witness's last known state.
type WitnessStatus struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// OK is true when its last answer was a cosignature.
	OK bool `json:"ok"`
	// Outcome describes the last answer.
	Outcome string `json:"outcome"`
	// LastAttempt and LastCosigned are RFC 3339 times ("" if never).
	LastAttempt  string `json:"last_attempt,omitempty"`
	LastCosigned string `json:"last_cosigned,omitempty"`
}

// Status is every witness's last known state, in policy order.
func (c *Collector) Status() []WitnessStatus {
	out := make([]WitnessStatus, 0, len(c.states))
	for _, s := range c.states {
		s.mu.Lock()
		ws := WitnessStatus{Name: s.witness.Name, URL: s.witness.URL, OK: s.ok, Outcome: s.outcome}
		if !s.attempted.IsZero() {
			ws.LastAttempt = s.attempted.UTC().Format(time.RFC3339)
		}
		if !s.lastOK.IsZero() {
			ws.LastCosigned = s.lastOK.UTC().Format(time.RFC3339)
		}
		s.mu.Unlock()
		out = append(out, ws)
	}
	return out
}

// Report is the readiness detail: the quorum and each witness's state.
type Report struct {
	Quorum   string          `json:"quorum"`
	Met      bool            `json:"met"`
	FailOpen bool            `json:"fail_open"`
	Summary  string          `json:"summary"`
	Witness  []WitnessStatus `json:"witnesses"`
}

// Report describes the quorum as of the witnesses' last answers.
func (c *Collector) Report(context.Context) any {
	met, summary := c.evaluate()
	return Report{Quorum: c.QuorumName(), Met: met, FailOpen: c.opts.FailOpen, Summary: summary, Witness: c.Status()}
}

// evaluate says whether the witnesses that last answered with a
// cosignature meet the quorum, and why (not).
func (c *Collector) evaluate() (bool, string) {
	ok := map[*trustpolicy.Witness]bool{}
	anyAttempt := false
	for _, s := range c.states {
		s.mu.Lock()
		ok[s.witness] = s.ok
		anyAttempt = anyAttempt || !s.attempted.IsZero()
		s.mu.Unlock()
	}
	cosigned := func(w *trustpolicy.Witness) bool { return ok[w] }
	met := c.policy.Satisfied(cosigned)
	if !anyAttempt && c.policy.Quorum != nil {
		return true, "no witness contacted since start; the log asks them when it publishes a checkpoint"
	}
	return met, c.policy.Explain(cosigned)
}

// Check is the readiness check: it fails when, as of the witnesses' last
// answers, the quorum is not met (so no checkpoint can be published), and
// names each witness that is not cosigning and why. With FailOpen it never
// fails: checkpoints are still published.
func (c *Collector) Check(context.Context) error {
	met, summary := c.evaluate()
	if met {
		return nil
	}
	var down []string
	for _, s := range c.Status() {
		if !s.OK {
			down = append(down, fmt.Sprintf("%s: %s", s.Name, s.Outcome))
		}
	}
	sort.Strings(down)
	msg := fmt.Sprintf("witness %s; %s", summary, strings.Join(down, "; "))
	if c.opts.FailOpen {
		c.opts.Logger.Warn("witness quorum not met; publishing anyway (fail-open)", "detail", msg)
		return nil
	}
	return errors.New("no new checkpoint can be published: " + msg)
}

// Quorum says whether, as of the witnesses' last answers, the quorum is met
// (true before any witness was asked), and names each witness that is not
// cosigning with why ("w2: unreachable"), sorted.
func (c *Collector) Quorum() (met bool, missing []string) {
	met, _ = c.evaluate()
	for _, s := range c.Status() {
		if !s.OK && s.LastAttempt != "" {
			missing = append(missing, fmt.Sprintf("%s: %s", s.Name, s.Outcome))
		}
	}
	sort.Strings(missing)
	return met, missing
}
