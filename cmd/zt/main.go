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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/broker/sandbox"
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
  zt agents register|revoke|list|show --server URL --svid ADMIN [flags]
                manage the agent registry (an administrator's SVID)
  zt version    print the version (also --version)
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
	case "agents":
		os.Exit(runAgents(os.Args[2:], os.Stdout, os.Stderr))
	case "-h", "--help", "help":
		fmt.Print(usage)
	case "--version", "-version", "version":
		cli.PrintVersion(os.Stdout, "zt")
	default:
		fmt.Fprintf(os.Stderr, "%s\n\n%s", cli.UnknownCommand("zt", os.Args[1], []string{"decide", "run", "broker", "a2a", "conformance", "agents", "version", "help"}), usage)
		os.Exit(exitUsage)
	}
}

// parseStatus parses the flags of a zt subcommand: -1 to go on, or the
// exit status (0 after -h, usage otherwise, the error printed).
func parseStatus(fs *flag.FlagSet, args []string, h cli.Help, stderr io.Writer, usage int) int {
	err := cli.Parse(fs, args, h)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "zt: %v\n", err)
	return usage
}
