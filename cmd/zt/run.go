package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/broker/sandbox"
	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"golang.org/x/sys/unix"
)

// Exit statuses of zt run when the command did not run to its own end.
const (
	exitRunUsage      = 64 // EX_USAGE
	exitRunNoDecision = 69 // EX_UNAVAILABLE: no verified decision
	exitRunDenied     = 77 // EX_NOPERM: a committed deny
	exitRunRefused    = 78 // the broker refused the work, or it did not start
	exitRunUnreported = 79 // the command ran; its result was not committed
)

var runHelp = cli.Help{Usage: "zt run --server URL --svid PREFIX --action A --resource R [flags] -- CMD ARGS...", About: `Asks ztlog for a decision (with a runtime attestation, a capability manifest
and the digest of the command line), hands the approved work to a broker —
the local one in this process, or a zt broker at --broker-url — which runs
it sandboxed, and reports the committed result.

Exit status: the command's own (128+N when a signal N ended it), or
  64 usage error
  69 no decision (the service could not be reached or did not answer with
     a verified decision; nothing ran)
  77 denied (the deny is committed; nothing ran)
  78 refused: the broker refused the work or it could not start
  79 the command ran, but its result could not be committed yet: the signed
     result waits in the outbox (--outbox) and the next zt run or zt broker
     with the same outbox commits it`}

// runFlags are the flags of zt run.
type runFlags struct {
	server, svid, bundle, serverID   string
	workloadAPI                      string
	action, resource                 string
	manifest, workdir                string
	brokerSVID, brokerURL, brokerID  string
	sandboxMode                      string
	unsafe                           bool
	replay                           string
	outbox                           string
	strict                           bool
	trustPolicy                      string
	model, modelDigest               string
	tool, toolManifest               string
	code                             string
	noAttest, inspectArgs, quiet     bool
	timeout                          time.Duration
	report                           string
	nonoProfile                      string
	nonoRollback, nonoAuditIntegrity bool
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "ztlog base URL, https://host:port")
	fs.StringVar(&f.svid, "svid", "", "path prefix of the agent's X.509-SVID: PREFIX.pem and PREFIX.key")
	fs.StringVar(&f.workloadAPI, "workload-api", "", "take the agent's SVID and bundle from the SPIFFE Workload API at this address (unix:///path; \"env\" = $SPIFFE_ENDPOINT_SOCKET) instead of --svid; the local broker then needs --broker-svid and --bundle")
	fs.StringVar(&f.bundle, "bundle", "", "trust bundle, PEM or SPIFFE bundle JSON (default: bundle.pem next to the SVID)")
	fs.StringVar(&f.serverID, "server-id", "", "the server's SPIFFE ID (default: any member of the SVID's trust domain)")
	fs.StringVar(&f.action, "action", "", "action name, e.g. demo.echo")
	fs.StringVar(&f.resource, "resource", "", "resource the action acts on")
	fs.StringVar(&f.manifest, "manifest", "", "capability manifest (JSON, contract/capability/manifest.md); default: strict, a fresh workdir, the command only")
	fs.StringVar(&f.workdir, "workdir", "", "working directory of the default manifest (default: a new temporary directory)")
	fs.StringVar(&f.brokerSVID, "broker-svid", "", "local broker: path prefix of its X.509-SVID (default: broker next to --svid)")
	fs.StringVar(&f.brokerURL, "broker-url", "", "hand the work to a zt broker at this URL instead of running it here")
	fs.StringVar(&f.brokerID, "broker", "", "with --broker-url: the broker's SPIFFE ID (the receipt audience)")
	fs.StringVar(&f.sandboxMode, "sandbox", "local", "local broker's sandbox: local (Landlock + namespaces) or nono")
	fs.BoolVar(&f.unsafe, "unsafe-no-sandbox", false, "local broker: run WITHOUT a sandbox (rlimits and timeout only); logged, and the result says so")
	fs.StringVar(&f.replay, "replay", "", "local broker: file of honoured receipt ids (default: PREFIX.replay of the broker SVID)")
	fs.StringVar(&f.outbox, "outbox", "", "local broker: directory keeping signed results until the log commits them (default: PREFIX.outbox of the broker SVID)")
	fs.BoolVar(&f.strict, "strict", false, "local broker: require the decision's inclusion proof under a checkpoint that satisfies --trust-policy")
	fs.StringVar(&f.trustPolicy, "trust-policy", "", "trust policy file: witnessed receipts are checked against it, and --strict's proofs (default: trust.policy next to --svid)")
	fs.StringVar(&f.model, "model", os.Getenv("ZT_MODEL"), "attested model: provider/name[@version] (env ZT_MODEL); without it no runtime attestation is sent")
	fs.StringVar(&f.modelDigest, "model-digest", "", "attested model digest, sha256:<hex>")
	fs.StringVar(&f.tool, "tool", "shell", "attested tool invoked: name[@version]")
	fs.StringVar(&f.toolManifest, "tool-manifest", "", "file whose digest is the attested tool manifest (default: the digest of the command line)")
	fs.StringVar(&f.code, "code", "", "file whose digest is the attested agent code (default: this zt executable)")
	fs.BoolVar(&f.noAttest, "no-attest", false, "send no runtime attestation")
	fs.BoolVar(&f.inspectArgs, "inspect-args", false, "send the command line for guardrail inspection (never stored; only its digest is logged)")
	fs.BoolVar(&f.quiet, "quiet", false, "print nothing but the command's own output")
	fs.DurationVar(&f.timeout, "timeout", 15*time.Second, "decision timeout")
	fs.StringVar(&f.report, "report", "", "write a JSON report of the decision and result to this file")
	fs.StringVar(&f.nonoProfile, "nono-profile", "", "nono sandbox: nono profile to start from")
	fs.BoolVar(&f.nonoRollback, "nono-rollback", false, "nono sandbox: rollback snapshots")
	fs.BoolVar(&f.nonoAuditIntegrity, "nono-audit-integrity", false, "nono sandbox: audit integrity")
}

// runReport is what --report writes.
type runReport struct {
	Decision      string            `json:"decision"`
	Reasons       json.RawMessage   `json:"reasons,omitempty"`
	DecisionIndex uint64            `json:"decision_index"`
	ActionDigest  string            `json:"action_digest"`
	CorrelationID string            `json:"correlation_id"`
	Refused       *broker.Refused   `json:"refused,omitempty"`
	Outcome       string            `json:"outcome,omitempty"`
	Exit          *attest.Exit      `json:"exit,omitempty"`
	Error         *attest.ErrorInfo `json:"error,omitempty"`
	Sandbox       string            `json:"sandbox,omitempty"`
	ResultIndex   *uint64           `json:"result_index,omitempty"`
	ResultError   string            `json:"result_error,omitempty"`
}

// exitError is a failure of zt run with its exit status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitf(code int, format string, a ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, a...)}
}

// runSetup is what zt run opens before it asks: the identities, the
// manifest, the SDK client and the request.
type runSetup struct {
	agent, brokerSrc identity.Source
	brokerID         spiffeid.ID
	manifest         *capability.Manifest
	client           *client.Client
	serverID         spiffeid.ID
	req              client.Request
	cleanup          []func()
}

func (r *runSetup) close() {
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
}

func runRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zt run", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	if code := parseStatus(fs, args, runHelp, stderr, exitRunUsage); code >= 0 {
		return code
	}
	argv := fs.Args()
	r := &runSetup{}
	defer r.close()
	rep := runReport{}
	code, err := f.run(r, argv, stdin, stdout, stderr, &rep)
	if r.client != nil {
		f.writeReport(&rep, stderr)
	}
	if e, ok := err.(*exitError); ok {
		fmt.Fprintf(stderr, "zt: %s\n", e.msg)
		return e.code
	}
	return code
}

// run decides and hands an allowed command to the broker.
func (f *runFlags) run(r *runSetup, argv []string, stdin io.Reader, stdout, stderr io.Writer, rep *runReport) (int, error) {
	if f.server == "" || (f.svid == "") == (f.workloadAPI == "") || f.action == "" || f.resource == "" || len(argv) == 0 {
		return 0, exitf(exitRunUsage, "run needs --server, one of --svid or --workload-api, --action, --resource and a command after --")
	}
	if err := f.open(r, argv); err != nil {
		return 0, err
	}
	if r.req.Runtime == nil && !f.noAttest {
		f.say(stderr, "no --model given: sending no runtime attestation (policies may require one)")
	}
	// A remote broker takes stdin whole in the work request: read it
	// before deciding, so stdin that cannot be sent commits nothing.
	var in []byte
	if f.brokerURL != "" {
		var err error
		if in, err = readWorkStdin(stdin); err != nil {
			return 0, err
		}
	}
	ctx := context.Background()
	d, err := r.client.Decide(ctx, r.req)
	if err != nil {
		return 0, exitf(exitRunNoDecision, "no decision, nothing ran: %v", err)
	}
	rep.Decision, rep.DecisionIndex, rep.ActionDigest, rep.CorrelationID = d.Response.Decision, d.Response.Log.Index, d.ActionDigest, d.CorrelationID
	rep.Reasons, _ = json.Marshal(d.Response.Reasons)
	if !d.Allow {
		fmt.Fprintf(stderr, "zt: DENY %s on %s (log index %d, correlation %s); nothing ran\n", f.action, f.resource, d.Response.Log.Index, d.CorrelationID)
		for _, r := range d.Response.Reasons {
			fmt.Fprintf(stderr, "zt:   %s: %s\n", r.Code, r.Message)
		}
		return exitRunDenied, nil
	}
	f.say(stderr, "ALLOW %s on %s (log index %d, correlation %s); handing to %s", f.action, f.resource, d.Response.Log.Index, d.CorrelationID, r.brokerID)
	caps, _ := json.Marshal(r.manifest)
	if f.brokerURL != "" {
		return f.remote(ctx, r.agent, r.brokerID, d, caps, argv, in, stdout, stderr, rep), nil
	}
	return f.local(ctx, r, d, caps, argv, stdin, stdout, stderr, rep)
}

func (f *runFlags) say(stderr io.Writer, format string, a ...any) {
	if !f.quiet {
		fmt.Fprintf(stderr, "zt: "+format+"\n", a...)
	}
}

// open loads the identities and the manifest and builds the client and
// the request.
func (f *runFlags) open(r *runSetup, argv []string) error {
	if err := f.openIdentities(r); err != nil {
		return err
	}
	m, err := f.capabilities(r, argv[0])
	if err != nil {
		return err
	}
	r.manifest = m
	cfg := client.Config{URL: f.server, SVID: r.agent, Bundles: r.agent, Broker: r.brokerID.String(), Timeout: f.timeout}
	if f.serverID != "" {
		if cfg.ServerID, err = spiffeid.FromString(f.serverID); err != nil {
			return exitf(exitRunUsage, "--server-id: %v", err)
		}
	}
	r.serverID = cfg.ServerID
	runtime, err := f.runtimeContext(argv)
	if err != nil {
		return exitf(exitRunUsage, "%v", err)
	}
	if r.client, err = client.New(cfg); err != nil {
		return exitf(exitRunUsage, "%v", err)
	}
	r.req = client.Request{Action: f.action, Resource: f.resource, Capabilities: m, Runtime: runtime}
	if f.inspectArgs {
		r.req.Args = broker.CommandArgs(argv)
	} else if r.req.ArgsDigest, err = broker.ArgsDigest(argv); err != nil {
		return exitf(exitRunUsage, "command line: %v", err)
	}
	return nil
}

// openIdentities loads the agent's SVID and, for the local broker, the
// broker's; the broker's SPIFFE ID is the receipt's audience.
func (f *runFlags) openIdentities(r *runSetup) error {
	var err error
	if f.workloadAPI != "" {
		addr := f.workloadAPI
		if addr == "env" {
			addr = ""
		}
		if f.brokerURL == "" && (f.brokerSVID == "" || f.bundle == "") {
			return exitf(exitRunUsage, "with --workload-api, the local broker needs --broker-svid and --bundle (or use --broker-url)")
		}
		if r.agent, err = client.FromWorkloadAPI(context.Background(), addr, 10*time.Second); err != nil {
			return exitf(exitRunUsage, "%v", workloadAPIError(err))
		}
	} else {
		if f.bundle == "" {
			f.bundle = filepath.Join(filepath.Dir(f.svid), "bundle.pem")
		}
		if r.agent, err = client.FromFiles(f.svid, f.bundle); err != nil {
			return exitf(exitRunUsage, "--svid %s: %v", f.svid, err)
		}
	}
	r.cleanup = append(r.cleanup, func() { r.agent.Close() })
	if f.brokerURL != "" {
		if r.brokerID, err = spiffeid.FromString(f.brokerID); err != nil {
			return exitf(exitRunUsage, "--broker-url needs --broker, the broker's SPIFFE ID: %v", err)
		}
		return nil
	}
	if f.brokerSVID == "" {
		f.brokerSVID = filepath.Join(filepath.Dir(f.svid), "broker")
	}
	if r.brokerSrc, err = identity.FromFiles(identity.Files{Cert: f.brokerSVID + ".pem", Key: f.brokerSVID + ".key", Bundle: f.bundle}); err != nil {
		return exitf(exitRunUsage, "--broker-svid %s: %v", f.brokerSVID, err)
	}
	r.cleanup = append(r.cleanup, func() { r.brokerSrc.Close() })
	s, _ := r.brokerSrc.GetX509SVID()
	r.brokerID = s.ID
	return nil
}

// capabilities is the manifest of --manifest, or the strict default over
// --workdir (a fresh temporary directory when not given) for cmd only.
func (f *runFlags) capabilities(r *runSetup, cmd string) (*capability.Manifest, error) {
	if f.manifest != "" {
		raw, err := os.ReadFile(f.manifest)
		if err != nil {
			return nil, exitf(exitRunUsage, "--manifest: %v", err)
		}
		m, err := capability.Parse(raw)
		if err != nil {
			return nil, exitf(exitRunUsage, "--manifest %s: %v", f.manifest, err)
		}
		return m, nil
	}
	wd := f.workdir
	if wd == "" {
		var err error
		if wd, err = os.MkdirTemp("", "zt-run-"); err != nil {
			return nil, exitf(exitRunUsage, "workdir: %v", err)
		}
		r.cleanup = append(r.cleanup, func() { os.RemoveAll(wd) })
	}
	return capability.Strict(wd, cmd), nil
}

// local runs the work through a broker in this process.
func (f *runFlags) local(ctx context.Context, r *runSetup, d *client.Decision, caps []byte, argv []string,
	stdin io.Reader, stdout, stderr io.Writer, rep *runReport) (int, error) {
	issuer, err := r.client.Issuer(ctx)
	if err != nil {
		return 0, exitf(exitRunRefused, "receipt issuer: %v", err)
	}
	runner, err := f.runner()
	if err != nil {
		return 0, exitf(exitRunRefused, "%v", err)
	}
	hc := brokerHTTPClient(r.brokerSrc, r.serverID)
	var strict *broker.Strict
	var witnesses *trustpolicy.Policy
	if f.strict {
		if strict, err = strictMode(f.trustPolicy, f.svid, f.server, hc); err != nil {
			return 0, exitf(exitRunUsage, "%v", err)
		}
	} else if witnesses, err = witnessPolicy(f.trustPolicy, f.svid); err != nil {
		return 0, exitf(exitRunUsage, "%v", err)
	}
	p, err := broker.Open(ctx, broker.ProcessConfig{SVID: r.brokerSrc, Server: f.server, HTTP: hc, Issuer: issuer, Keys: r.client.Keys(),
		ReplayPath: defaultPath(f.replay, f.brokerSVID+".replay"), OutboxDir: defaultPath(f.outbox, f.brokerSVID+".outbox"),
		Runner: runner, Strict: strict, Witnesses: witnesses, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, exitf(exitRunRefused, "%v", err)
	}
	defer p.Close()
	// Results an earlier run could not commit go first.
	if n, err := p.Flush(ctx); err != nil {
		f.say(stderr, "%d earlier result(s) still wait in %s: %v", p.Pending(), p.Outbox.Dir(), err)
	} else if n > 0 {
		f.say(stderr, "committed %d earlier result(s) from %s", n, p.Outbox.Dir())
	}
	agentSVID, _ := r.agent.GetX509SVID()
	report, err := p.Handle(ctx, &broker.Work{Receipt: d.Token, Action: f.action, Resource: f.resource, Argv: argv,
		Capabilities: caps, Caller: agentSVID.ID.String(), Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if ref, ok := broker.AsRefused(err); ok {
		rep.Refused = ref
		return 0, exitf(exitRunRefused, "the broker refused the work (%s): %s; nothing ran", ref.Code, ref.Message)
	}
	if err != nil {
		return 0, exitf(exitRunRefused, "%v", err)
	}
	var resultIndex *uint64
	if report.Result != nil {
		resultIndex = &report.Result.Log.Index
	}
	return f.finish(rep, report.Predicate, resultIndex, report.ReportError, stderr), nil
}

func defaultPath(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

// maxRemoteStdin is the most stdin a remote broker's work request
// carries (base64 inside a body of at most broker.MaxWorkBody).
const maxRemoteStdin = broker.MaxWorkBody / 2

// readWorkStdin reads stdin for a remote broker, whole or not at all.
func readWorkStdin(stdin io.Reader) ([]byte, error) {
	in, err := httperr.ReadBody(stdin, maxRemoteStdin)
	var tl *httperr.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, exitf(exitRunUsage, "stdin is larger than %d bytes, the most a remote broker (--broker-url) takes; nothing was decided or run (run the broker locally, or pass the data as a file the capabilities grant)", maxRemoteStdin)
	case err != nil:
		return nil, exitf(exitRunUsage, "reading stdin for the remote broker: %v; nothing was decided or run", err)
	}
	return in, nil
}

// remote hands the work to a zt broker.
func (f *runFlags) remote(ctx context.Context, agent identity.Source, brokerID spiffeid.ID, d *client.Decision, caps []byte, argv []string,
	in []byte, stdout, stderr io.Writer, rep *runReport) int {
	bc := &broker.Client{URL: f.brokerURL, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: identity.ClientTLS(agent, agent, brokerID, brokerID.TrustDomain())}}}
	resp, err := bc.Submit(ctx, &broker.WorkRequest{Receipt: d.Token, Action: f.action, Resource: f.resource, Argv: argv,
		Capabilities: caps, Stdin: base64.StdEncoding.EncodeToString(in)})
	if ref, ok := broker.AsRefused(err); ok {
		rep.Refused = ref
		fmt.Fprintf(stderr, "zt: the broker refused the work (%s): %s; nothing ran\n", ref.Code, ref.Message)
		return exitRunRefused
	}
	if err != nil {
		fmt.Fprintf(stderr, "zt: broker %s: %v (the work may have run; check the log for a result of decision %d)\n", f.brokerURL, err, d.Response.Log.Index)
		return exitRunRefused
	}
	for _, o := range []struct {
		b64 string
		w   io.Writer
	}{{resp.Stdout, stdout}, {resp.Stderr, stderr}} {
		b, _ := base64.StdEncoding.DecodeString(o.b64)
		o.w.Write(b)
	}
	p := &attest.BrokerResult{Outcome: resp.Outcome, Exit: resp.Exit, Error: resp.Error, Sandbox: resp.Sandbox}
	if why := incompleteOutcome(p); why != "" {
		fmt.Fprintf(stderr, "zt: broker %s answered %s (the work may have run; check the log for a result of decision %d)\n", f.brokerURL, why, d.Response.Log.Index)
		return exitRunRefused
	}
	var resultIndex *uint64
	if resp.Result != nil {
		resultIndex = &resp.Result.Log.Index
	}
	var reportErr error
	switch {
	case resp.ResultError != "":
		reportErr = errors.New(resp.ResultError)
	case resp.Result == nil && p.Outcome != attest.OutcomeError:
		// The work ran and nothing says its result is in the log.
		reportErr = errors.New("the broker reported no committed result and no reason")
	}
	return f.finish(rep, p, resultIndex, reportErr, stderr)
}

// incompleteOutcome says what is missing from a broker's answer for its
// outcome (as attest.BrokerResult.Validate requires of the signed one), or
// "" when it is whole.
func incompleteOutcome(p *attest.BrokerResult) string {
	switch p.Outcome {
	case attest.OutcomeOK, attest.OutcomeFailed:
		if p.Exit == nil {
			return fmt.Sprintf("outcome %q without an exit status", p.Outcome)
		}
	case attest.OutcomeError:
		if p.Error == nil {
			return "outcome \"error\" without saying why the work did not start"
		}
	default:
		return fmt.Sprintf("an unknown outcome %q", text.Cut(p.Outcome, 64))
	}
	return ""
}

// finish reports how the work ended and picks the exit status.
func (f *runFlags) finish(rep *runReport, p *attest.BrokerResult, resultIndex *uint64, reportErr error, stderr io.Writer) int {
	rep.Outcome, rep.Exit, rep.Error, rep.Sandbox, rep.ResultIndex = p.Outcome, p.Exit, p.Error, p.Sandbox.Kind, resultIndex
	status := 0
	switch {
	case p.Outcome == attest.OutcomeError:
		fmt.Fprintf(stderr, "zt: the work did not start (%s): %s\n", p.Error.Class, p.Error.Message)
		status = exitRunRefused
	case p.Exit.Signal != "":
		status = 128 + signalNumber(p.Exit.Signal)
	default:
		status = p.Exit.Status
	}
	if !f.quiet && p.Outcome != attest.OutcomeError {
		how := fmt.Sprintf("exit status %d", p.Exit.Status)
		if p.Exit.Signal != "" {
			how = "killed by " + p.Exit.Signal
		}
		if p.Exit.TimedOut {
			how += " at the time limit"
		}
		fmt.Fprintf(stderr, "zt: %s in %s: %s\n", p.Outcome, p.Sandbox.Kind, how)
	}
	if reportErr != nil {
		rep.ResultError = reportErr.Error()
		fmt.Fprintf(stderr, "zt: the result was NOT committed: %v\n", reportErr)
		return exitRunUnreported
	}
	if resultIndex != nil && !f.quiet {
		fmt.Fprintf(stderr, "zt: result committed at log index %d (decision %d)\n", *resultIndex, rep.DecisionIndex)
	}
	return status
}

func (f *runFlags) writeReport(rep *runReport, stderr io.Writer) {
	if f.report == "" {
		return
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(f.report, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintf(stderr, "zt: --report: %v\n", err)
	}
}

func (f *runFlags) runner() (*sandbox.Runner, error) {
	mode := sandbox.Mode(f.sandboxMode)
	if f.unsafe {
		mode = sandbox.ModeUnsafe
	}
	r, err := sandbox.New(sandbox.Config{Mode: mode, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		NonoOptions: sandbox.NonoOptions{Profile: f.nonoProfile, Rollback: f.nonoRollback, AuditIntegrity: f.nonoAuditIntegrity}})
	switch {
	case errors.Is(err, sandbox.ErrNoLandlock):
		return nil, fmt.Errorf("%w: use --sandbox nono, or --unsafe-no-sandbox explicitly", err)
	case errors.Is(err, sandbox.ErrNoNono):
		return nil, fmt.Errorf("%w: use --sandbox local", err)
	}
	return r, err
}

// workloadAPIError names the flag of a missing Workload API address.
func workloadAPIError(err error) error {
	if errors.Is(err, identity.ErrNoWorkloadAPI) {
		return fmt.Errorf("--workload-api env: SPIFFE_ENDPOINT_SOCKET is not set: %w", err)
	}
	return err
}

// runtimeContext is the runtime context zt run attests (nil: none).
func (f *runFlags) runtimeContext(argv []string) (*attest.RuntimeContext, error) {
	if f.noAttest || f.model == "" {
		return nil, nil
	}
	model, err := attestedModel(f.model, f.modelDigest)
	if err != nil {
		return nil, err
	}
	rc := &attest.RuntimeContext{Model: model}
	toolName, toolVersion, _ := strings.Cut(f.tool, "@")
	rc.Tool = &attest.Tool{Name: toolName, Version: toolVersion}
	if f.toolManifest != "" {
		d, err := fileDigest(f.toolManifest)
		if err != nil {
			return nil, fmt.Errorf("--tool-manifest: %w", err)
		}
		rc.Tool.ManifestDigest = d
	} else {
		d, err := broker.ArgsDigest(argv)
		if err != nil {
			return nil, err
		}
		rc.Tool.ManifestDigest = d
	}
	if rc.Code, err = attestedCode(f.code); err != nil {
		return nil, err
	}
	// Validity and subject are filled per request by the SDK; validate the
	// rest now for a clear usage error.
	probe := *rc
	probe.IssuedAt, probe.ExpiresAt = attest.FormatTime(time.Now()), attest.FormatTime(time.Now().Add(time.Minute))
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	return rc, nil
}

// attestedModel reads --model provider/name[@version] and --model-digest.
func attestedModel(model, digest string) (attest.Model, error) {
	provider, rest, ok := strings.Cut(model, "/")
	if !ok || provider == "" || rest == "" {
		return attest.Model{}, fmt.Errorf("--model %q: want provider/name[@version]", model)
	}
	name, version, _ := strings.Cut(rest, "@")
	return attest.Model{Provider: provider, Name: name, Version: version, Digest: digest}, nil
}

// attestedCode is the attested code: the file --code names, or this zt
// executable.
func attestedCode(code string) (attest.Code, error) {
	if code == "" {
		exe, err := os.Executable()
		if err != nil {
			return attest.Code{}, err
		}
		code = exe
	}
	d, err := fileDigest(code)
	if err != nil {
		return attest.Code{}, fmt.Errorf("--code: %w", err)
	}
	return attest.Code{Digest: d, URI: "file://" + code}, nil
}

func fileDigest(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// brokerHTTPClient is the broker's mutual-TLS client to the service.
func brokerHTTPClient(src identity.Source, server spiffeid.ID) *http.Client {
	svid, _ := src.GetX509SVID()
	// zt broker runs for long: a new transport per SVID, so a kept
	// connection never presents an SVID the Workload API has rotated.
	return &http.Client{Timeout: 30 * time.Second, Transport: identity.RotatingTransport(src, func() *http.Transport {
		return &http.Transport{TLSClientConfig: identity.ClientTLS(src, src, server, svid.ID.TrustDomain())}
	})}
}

// strictMode reads the trust policy for --strict.
func strictMode(path, svidPrefix, server string, hc *http.Client) (*broker.Strict, error) {
	if path == "" {
		path = filepath.Join(filepath.Dir(svidPrefix), "trust.policy")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--trust-policy: %w", err)
	}
	pol, err := trustpolicy.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--trust-policy %s: %w", path, err)
	}
	return &broker.Strict{Entries: &broker.HTTPEntries{Client: hc, BaseURL: server}, Policy: pol}, nil
}

// witnessPolicy reads the trust policy witnessed receipts are checked
// against: path, or trust.policy next to the SVID when that exists (nil
// when it does not: witnessed receipts are then refused).
func witnessPolicy(path, svidPrefix string) (*trustpolicy.Policy, error) {
	explicit := path != ""
	if !explicit {
		path = filepath.Join(filepath.Dir(svidPrefix), "trust.policy")
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--trust-policy: %w", err)
	}
	pol, err := trustpolicy.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--trust-policy %s: %w", path, err)
	}
	return pol, nil
}

func signalNumber(name string) int { return int(unix.SignalNum(name)) }
