package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
)

// decideFlags are zt decide's flags.
type decideFlags struct {
	server, svid, bundle, serverID        string
	workloadAPI                           string
	action, resource, broker              string
	argsDigest, argsFile, corr, userToken string
	argsJSON                              string
	timeout                               time.Duration
	asJSON                                bool
}

func (f *decideFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "ztlog base `URL`, https://host:port")
	fs.StringVar(&f.svid, "svid", "", "path `PREFIX` of the agent's X.509-SVID: PREFIX.pem (chain) and PREFIX.key")
	fs.StringVar(&f.workloadAPI, "workload-api", "", "take the agent's SVID and bundle from the SPIFFE Workload API at this `address` (unix:///path; \"env\" = $SPIFFE_ENDPOINT_SOCKET) instead of --svid")
	fs.StringVar(&f.bundle, "bundle", "", "trust bundle `file`, PEM or SPIFFE bundle JSON (default: bundle.pem next to the SVID)")
	fs.StringVar(&f.serverID, "server-id", "", "the server's SPIFFE `ID` (default: any member of the SVID's trust domain)")
	fs.StringVar(&f.action, "action", "", "action `name`, e.g. demo.echo")
	fs.StringVar(&f.resource, "resource", "", "`resource` the action acts on")
	fs.StringVar(&f.broker, "broker", "", "broker SPIFFE `ID` the receipt is for (default: the server's default broker)")
	fs.StringVar(&f.argsDigest, "args-digest", "", "sha256:<hex> `digest` of the action's arguments")
	fs.StringVar(&f.argsFile, "args-file", "", "`file` whose SHA-256 is sent as the args digest (its content is not sent)")
	fs.StringVar(&f.corr, "correlation-id", "", "X-Correlation-ID to send (default: a generated `id`)")
	fs.StringVar(&f.userToken, "user-token", "", "`file` holding a delegated user's JWT (sent as X-ZT-User-Token)")
	fs.StringVar(&f.argsJSON, "args", "", "argument values as a `JSON` object, sent for guardrail inspection (never logged; their digest is)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "request timeout")
	fs.BoolVar(&f.asJSON, "json", false, "print the service's JSON answer")
}

var decideHelp = cli.Help{Usage: "zt decide --server URL --svid PREFIX|--workload-api ADDR --action A --resource R [flags]",
	About: `Ask the decision service whether the agent may run an action, through the Go SDK: the answer
is verified (action, resource, action digest, and an allow's receipt against the service's
JWKS) and the committed decision printed.
Exit status: 0 allow, 1 deny, 2 usage error, 3 no decision (never treat 3 as an allow).`}

// decideUsage is a usage error of zt decide.
type decideUsage struct{ msg string }

func (e *decideUsage) Error() string { return e.msg }

func usageErr(format string, a ...any) error { return &decideUsage{fmt.Sprintf(format, a...)} }

// request turns the flags into a client configuration and request.
func (f *decideFlags) request() (client.Config, client.Request, error) {
	var cfg client.Config
	var req client.Request
	if f.server == "" || (f.svid == "") == (f.workloadAPI == "") || f.action == "" || f.resource == "" {
		return cfg, req, usageErr("decide needs --server, one of --svid or --workload-api, --action and --resource")
	}
	if !strings.HasPrefix(f.server, "https://") {
		// Over plain HTTP the answer would come from whoever answers at
		// that address, with nothing to verify it by.
		return cfg, req, usageErr("--server %q: the service must be reached over https:// (mutual TLS with its X.509-SVID)", f.server)
	}
	req = client.Request{Action: f.action, Resource: f.resource, Broker: f.broker, ArgsDigest: f.argsDigest}
	if f.argsFile != "" {
		if f.argsDigest != "" {
			return cfg, req, usageErr("give --args-digest or --args-file, not both")
		}
		b, err := os.ReadFile(f.argsFile)
		if err != nil {
			return cfg, req, usageErr("--args-file: %v", err)
		}
		req.ArgsDigest = entry.Digest(b)
	}
	if f.argsJSON != "" {
		if !json.Valid([]byte(f.argsJSON)) {
			return cfg, req, usageErr("--args is not JSON")
		}
		req.Args = json.RawMessage(f.argsJSON)
	}
	if f.userToken != "" {
		b, err := os.ReadFile(f.userToken)
		if err != nil {
			return cfg, req, usageErr("--user-token: %v", err)
		}
		req.UserToken = strings.TrimSpace(string(b))
	}
	src, err := f.identity()
	if err != nil {
		return cfg, req, err
	}
	cfg = client.Config{URL: f.server, SVID: src, Bundles: src, Timeout: f.timeout, Breaker: client.Breaker{Failures: -1}}
	if f.serverID != "" {
		if cfg.ServerID, err = spiffeid.FromString(f.serverID); err != nil {
			return cfg, req, usageErr("--server-id: %v", err)
		}
	}
	return cfg, req, nil
}

// noDecision is a failure before the request that is no usage error (the
// Workload API did not answer): exit 3, never an allow.
type noDecision struct{ error }

// identity loads the agent's SVID and bundle from files or the Workload
// API (which keeps them rotated, federated trust domains included).
func (f *decideFlags) identity() (identity.Source, error) {
	if f.workloadAPI != "" {
		addr := f.workloadAPI
		if addr == "env" {
			addr = ""
		}
		src, err := client.FromWorkloadAPI(context.Background(), addr, f.timeout)
		if err != nil {
			return nil, noDecision{workloadAPIError(err)}
		}
		return src, nil
	}
	bundle := f.bundle
	if bundle == "" {
		bundle = filepath.Join(filepath.Dir(f.svid), "bundle.pem")
	}
	src, err := client.FromFiles(f.svid, bundle)
	if err != nil {
		return nil, usageErr("--svid %s: %v (want %s.pem and %s.key, and the bundle %s)", f.svid, err, f.svid, f.svid, bundle)
	}
	return src, nil
}

// runDecide is zt decide: one decision through the SDK, which verifies the
// answer (and an allow's receipt against the issuer's JWKS) or fails
// closed.
func runDecide(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zt decide", flag.ContinueOnError)
	var f decideFlags
	f.register(fs)
	if code := parseStatus(fs, args, decideHelp, stderr, exitUsage); code >= 0 {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "zt: "+format+"\n", a...)
		return code
	}
	cfg, req, err := f.request()
	if nd, ok := err.(noDecision); ok {
		return fail(exitNoDecision, "no decision: %v", nd.error)
	}
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if src, ok := cfg.SVID.(identity.Source); ok {
		defer src.Close()
	}
	c, err := client.New(cfg)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if f.corr != "" {
		ctx = client.WithCorrelationID(ctx, f.corr)
	}
	d, err := c.Decide(ctx, req)
	if err != nil {
		var se *client.ServiceError
		if errors.As(err, &se) && f.asJSON {
			stdout.Write(se.Body)
		}
		return fail(exitNoDecision, "%s", strings.TrimPrefix(err.Error(), "ztlog: "))
	}
	if f.asJSON {
		stdout.Write(d.Raw)
		if !bytes.HasSuffix(d.Raw, []byte("\n")) {
			fmt.Fprintln(stdout)
		}
	} else {
		printDecision(stdout, &d.Response)
	}
	if d.Allow {
		return exitAllow
	}
	return exitDeny
}

func printDecision(w io.Writer, ar *api.ActionResponse) {
	fmt.Fprintf(w, "%s  %s on %s\n", strings.ToUpper(ar.Decision), ar.Action, ar.Resource)
	for _, r := range ar.Reasons {
		fmt.Fprintf(w, "  reason        %s: %s\n", r.Code, r.Message)
	}
	fmt.Fprintf(w, "  actor         %s\n", ar.Actor)
	for _, f := range ar.Findings {
		fmt.Fprintf(w, "  finding       %s in %s at %d+%d (%s)\n", f.Type, f.Arg, f.Offset, f.Length, f.Rule)
	}
	fmt.Fprintf(w, "  log index     %d (%s)\n", ar.Log.Index, ar.Log.Origin)
	fmt.Fprintf(w, "  leaf hash     %s\n", ar.Log.LeafHash)
	fmt.Fprintf(w, "  action digest %s\n", ar.ActionDigest)
	fmt.Fprintf(w, "  policy        %s %s\n", ar.Policy.Engine, ar.Policy.Hash)
	fmt.Fprintf(w, "  correlation   %s\n", ar.CorrelationID)
	if ar.Receipt != "" {
		fmt.Fprintf(w, "  receipt       (expires %s)\n%s\n", ar.ReceiptExpires, ar.Receipt)
	}
}
