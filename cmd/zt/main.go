// Command zt is the agent's and the broker's side of the adapter contract.
//
//	zt decide --server URL --svid PREFIX --action A --resource R [flags]
//	zt decide --server URL --workload-api unix:///path --action A --resource R [flags]
//	zt run    --server URL --svid PREFIX --action A --resource R [flags] -- CMD ARGS...
//	zt broker --server URL --svid PREFIX [--listen ADDR] [flags]
//	zt mcp proxy --server URL --svid PREFIX --model P/NAME [flags] -- CMD ARGS...
//
// decide asks the ztlog decision path whether the agent may run an action,
// authenticating with the X.509-SVID in PREFIX.pem / PREFIX.key (mutual
// TLS), and prints the committed decision: effect, reasons, log index, leaf
// hash and, for an allow, the receipt to hand to the broker. --json prints
// the service's JSON answer unchanged.
//
// Exit status of decide: 0 allow, 1 deny, 2 usage error, 3 no decision
// (the service could not be reached, refused the request, or could not
// commit) — never treat 3 as an allow.
//
// run decides (with a runtime attestation when --model is given, the
// capability manifest, the command line's digest), hands the approved work
// to the broker in this process (or to a zt broker at --broker-url), which
// verifies the receipt and runs the command sandboxed, and reports the
// committed result. It exits with the command's status, or 64 usage, 69 no
// decision, 77 denied, 78 refused by the broker or did not start, 79 ran
// but the result was not committed.
//
// broker serves the work API over mutual TLS (contract/broker/broker.md).
//
// mcp proxy is the MCP gateway (contract/gateway/mcp/gateway.md): every
// tools/call is decided and committed before it is forwarded.
//
// a2a gates an A2A agent: messages are decided before they are forwarded
// (contract/gateway/a2a/gateway.md).
//
// conformance runs the adapter contract's conformance suite against a
// target (contract/conformance/README.md).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"
	"github.com/zt-infra/ztlog/internal/version"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker/sandbox"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
)

const usage = `zt: the agent side of the ztlog adapter contract

usage:
  zt decide --server URL (--svid PREFIX | --workload-api ADDR) --action A --resource R [flags]
                ask for a decision; prints decision, log index and receipt
  zt run --server URL --svid PREFIX --action A --resource R [flags] -- CMD ARGS...
                decide, then run the command sandboxed through a broker and
                commit its result
  zt broker --server URL --svid PREFIX [--listen ADDR] [flags]
                serve the work API: receipt-checked, sandboxed, reported
  zt mcp proxy --server URL --svid PREFIX --model P/NAME [flags] -- CMD ARGS...
  zt mcp proxy --server URL --svid PREFIX --model P/NAME --listen ADDR --upstream URL
                the MCP gateway: every tools/call decided and committed first
  zt a2a --upstream URL --server URL --svid PREFIX --broker-svid PREFIX [--listen ADDR]
                an A2A gate: every message to the agent is decided first,
                denied or undecided messages are never forwarded
  zt conformance --target URL --svid PREFIX [--jwt FILE] [--broker-svid PREFIX] [--json] [--junit FILE]
                run the adapter contract's conformance checks against a target
                (exit 0 all passed, 1 a check failed, 2 usage)
  (zt <command> -h for flags)

exit status of decide: 0 allow, 1 deny, 2 usage error, 3 no decision (never an allow)
exit status of run: the command's, or 64 usage, 69 no decision, 77 denied,
  78 refused or did not start, 79 ran but the result was not committed
`

// Exit statuses.
const (
	exitAllow      = 0
	exitDeny       = 1
	exitUsage      = 2
	exitNoDecision = 3
)

func main() {
	// A sandbox helper re-executed by the broker never returns from here.
	sandbox.Child()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(exitUsage)
	}
	switch os.Args[1] {
	case "decide":
		os.Exit(runDecide(os.Args[2:], os.Stdout, os.Stderr))
	case "run":
		os.Exit(runRun(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "broker":
		os.Exit(runBroker(os.Args[2:], os.Stderr))
	case "mcp":
		os.Exit(runMCP(os.Args[2:], os.Stderr))
	case "conformance":
		os.Exit(runConformance(os.Args[2:], os.Stdout, os.Stderr))
	case "a2a":
		os.Exit(runA2A(os.Args[2:], os.Stderr))
	case "-h", "--help", "help":
		fmt.Print(usage)
	case "version", "--version":
		fmt.Println(version.Get().String("zt"))
	default:
		fmt.Fprintf(os.Stderr, "zt: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(exitUsage)
	}
}

func runDecide(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decide", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "ztlog base URL, https://host:port")
	svidPrefix := fs.String("svid", "", "path prefix of the agent's X.509-SVID: PREFIX.pem (chain) and PREFIX.key")
	workloadAPI := fs.String("workload-api", "", "take the agent's SVID and bundle from the SPIFFE Workload API at this address (unix:///path; \"env\" = $SPIFFE_ENDPOINT_SOCKET) instead of --svid")
	bundlePath := fs.String("bundle", "", "trust bundle, PEM or SPIFFE bundle JSON (default: bundle.pem next to the SVID)")
	serverID := fs.String("server-id", "", "the server's SPIFFE ID (default: any member of the SVID's trust domain)")
	action := fs.String("action", "", "action name, e.g. demo.echo")
	resource := fs.String("resource", "", "resource the action acts on")
	broker := fs.String("broker", "", "broker SPIFFE ID the receipt is for (default: the server's default broker)")
	argsDigest := fs.String("args-digest", "", "sha256:<hex> digest of the action's arguments")
	argsFile := fs.String("args-file", "", "file whose SHA-256 is sent as the args digest (its content is not sent)")
	corr := fs.String("correlation-id", "", "X-Correlation-ID to send (default: the server generates one)")
	userToken := fs.String("user-token", "", "file holding a delegated user's JWT (sent as X-ZT-User-Token)")
	argsJSON := fs.String("args", "", "argument values as a JSON object, sent for guardrail inspection (never logged; their digest is)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	asJSON := fs.Bool("json", false, "print the service's JSON answer")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "zt: "+format+"\n", a...)
		return code
	}
	if *server == "" || (*svidPrefix == "") == (*workloadAPI == "") || *action == "" || *resource == "" {
		return fail(exitUsage, "decide needs --server, one of --svid or --workload-api, --action and --resource")
	}
	if !strings.HasPrefix(*server, "https://") {
		// Over plain HTTP the answer would come from whoever answers at
		// that address, with nothing to verify it by.
		return fail(exitUsage, "--server %q: the service must be reached over https:// (mutual TLS with its X.509-SVID)", *server)
	}
	if *argsFile != "" {
		if *argsDigest != "" {
			return fail(exitUsage, "give --args-digest or --args-file, not both")
		}
		b, err := os.ReadFile(*argsFile)
		if err != nil {
			return fail(exitUsage, "--args-file: %v", err)
		}
		*argsDigest = entry.Digest(b)
	}
	var src identity.Source
	var svid *x509svid.SVID
	if *workloadAPI != "" {
		addr := *workloadAPI
		if addr == "env" {
			addr = ""
		}
		// The Workload API gives the SVID and the bundles, federated
		// trust domains included; it rotates them by itself.
		var err error
		if src, err = identity.FromWorkloadAPI(context.Background(), addr, *timeout); err != nil {
			return fail(exitNoDecision, "no decision: %v", err)
		}
		defer src.Close()
		if svid, err = src.GetX509SVID(); err != nil {
			return fail(exitNoDecision, "no decision: %v", err)
		}
	} else {
		var err error
		if svid, err = x509svid.Load(*svidPrefix+".pem", *svidPrefix+".key"); err != nil {
			return fail(exitUsage, "--svid %s: %v (want %s.pem and %s.key)", *svidPrefix, err, *svidPrefix, *svidPrefix)
		}
		if *bundlePath == "" {
			*bundlePath = filepath.Join(filepath.Dir(*svidPrefix), "bundle.pem")
		}
		// The bundle loader wants a server SVID too; reuse the agent's files.
		if src, err = identity.FromFiles(identity.Files{Cert: *svidPrefix + ".pem", Key: *svidPrefix + ".key", Bundle: *bundlePath}); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	var err error
	var sid spiffeid.ID
	if *serverID != "" {
		if sid, err = spiffeid.FromString(*serverID); err != nil {
			return fail(exitUsage, "--server-id: %v", err)
		}
	}
	req := api.ActionRequest{Action: *action, Resource: *resource, Broker: *broker, ArgsDigest: *argsDigest}
	if *argsJSON != "" {
		if !json.Valid([]byte(*argsJSON)) {
			return fail(exitUsage, "--args is not JSON")
		}
		req.Args = json.RawMessage(*argsJSON)
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*server, "/")+"/v1/actions", bytes.NewReader(body))
	if err != nil {
		return fail(exitUsage, "--server: %v", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if *corr != "" {
		hreq.Header.Set("X-Correlation-ID", *corr)
	}
	if *userToken != "" {
		b, err := os.ReadFile(*userToken)
		if err != nil {
			return fail(exitUsage, "--user-token: %v", err)
		}
		hreq.Header.Set(identity.UserTokenHeader, strings.TrimSpace(string(b)))
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: identity.ClientTLS(src, src, sid, svid.ID.TrustDomain())}}
	resp, err := client.Do(hreq)
	if err != nil {
		return fail(exitNoDecision, "no decision: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(exitNoDecision, "no decision: reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
		var e httperr.Error
		if json.Unmarshal(raw, &e) == nil && e.Code != "" {
			where := ""
			if e.Field != "" {
				where = " (" + e.Field + ")"
			}
			if *asJSON {
				stdout.Write(raw)
			}
			return fail(exitNoDecision, "no decision: %d %s%s: %s", resp.StatusCode, e.Code, where, e.Message)
		}
		return fail(exitNoDecision, "no decision: HTTP %d: %s", resp.StatusCode, text.Cut(string(raw), 300))
	}
	var ar api.ActionResponse
	if err := json.Unmarshal(raw, &ar); err != nil {
		return fail(exitNoDecision, "no decision: the answer is not a decision: %v", err)
	}
	// Fail closed on anything inconsistent: a 200 must say allow and carry
	// a committed index; a 403 must say deny.
	switch {
	case resp.StatusCode == http.StatusOK && ar.Decision != "allow":
		return fail(exitNoDecision, "no decision: HTTP 200 but decision %q", ar.Decision)
	case resp.StatusCode == http.StatusForbidden && ar.Decision != "deny":
		return fail(exitNoDecision, "no decision: HTTP 403 but decision %q", ar.Decision)
	case ar.Log.LeafHash == "":
		return fail(exitNoDecision, "no decision: the answer has no log evidence")
	case ar.Action != *action || ar.Resource != *resource:
		return fail(exitNoDecision, "no decision: the answer is about %q on %q, not %q on %q", text.Cut(ar.Action, 100), text.Cut(ar.Resource, 200), *action, *resource)
	}
	if *asJSON {
		stdout.Write(raw)
		if !bytes.HasSuffix(raw, []byte("\n")) {
			fmt.Fprintln(stdout)
		}
	} else {
		printDecision(stdout, &ar)
	}
	if ar.Decision == "allow" {
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
