// Command zt-audit is the auditor's offline verifier.
//
//	zt-audit verify FILE [--policy FILE] [--json]   verify a file offline (split-view evidence)
//	zt-audit verify --legacy FILE [--kms-key PEM]    the earlier ZT hash-chained audit records
//	zt-audit verify BUNDLE --policy FILE             verify one action's evidence bundle
//	zt-audit bundle --log URL --policy FILE --index N   assemble an evidence bundle
//	zt-audit audit --log URL|DIR --policy FILE       audit the whole log from its tiles
//	zt-audit consistency OLD NEW --log URL --policy FILE   prove OLD is a prefix of NEW
//	zt-audit monitor --log URL --policy FILE --state DIR   follow the log and alert
//	zt-audit history --agent ID|--correlation-id ID --log URL --policy FILE   an agent's verified history
//	zt-audit explore --log URL|DIR --policy FILE   the evidence explorer on localhost
//	zt-audit daal ...   check DAAL anchors, prove and verify actions against them
//
// Exit status: 0 verified, 1 verification failed, 2 unusable input.
package main

import (
	"flag"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
)

const usage = `zt-audit: verify ztlog evidence offline

usage:
  zt-audit verify FILE [--policy FILE] [--json]
                             verify split-view evidence: did the log sign two views?
  zt-audit verify BUNDLE --policy FILE [--spiffe-bundle FILE] [--policy-hash H]... [--json]
                             verify one action's evidence bundle offline
  zt-audit bundle --log URL|DIR --policy FILE --index N [--spiffe-bundle FILE] [--result M] [--receipt FILE] [--out FILE]
                             assemble the evidence bundle of the decision at N
  zt-audit verify --legacy FILE [--kms-key PEM] [--hash-only] [--json]
                             the earlier ZT adapter's hash-chained audit records
  zt-audit audit --log URL|DIR --policy FILE [--spiffe-bundle FILE] [--window D] [--merkle-only] [--json]
                             audit the whole log: tree, tiles, entries, completeness
  zt-audit consistency OLD NEW --log URL|DIR --policy FILE [--json]
                             prove the saved checkpoint OLD is a prefix of NEW (- = current)
  zt-audit monitor --log URL|DIR --policy FILE --state DIR [--spiffe-bundle FILE] [--webhook URL] [--once]
                             follow the log; alerts as JSON lines on stdout
  zt-audit history --agent ID | --correlation-id ID --log URL --policy FILE [--since T] [--size N] [--json]
                             every entry of an agent or correlation id, proven complete
  zt-audit explore --log URL|DIR --policy FILE [--listen 127.0.0.1:PORT]
                             serve the evidence explorer: a web page that verifies the log in the browser
  zt-audit replay --log URL|DIR [--index N] [--policy-dir DIR] [--json]
                             re-decide one decision (or, without --index, every one) under its committed
                             policy; runs zt-replay, which links the policy engines zt-audit leaves out
  zt-audit policy-hash DIR|BUNDLE [--engine opa|cedar] [--json]
                             the hash of a policy you reviewed (runs zt-replay)
  zt-audit daal SUBCOMMAND   DAAL anchors: check, prove, verify, evidence, dump (zt-audit daal -h)

exit status: 0 verified, 1 verification failed, 2 unusable input
`

// commands maps each subcommand to its function; each lives in its own
// file.
var commands = map[string]cli.Command{
	"daal":        runDAAL,
	"verify":      runVerify,
	"audit":       runLogAudit,
	"bundle":      runBundle,
	"consistency": runConsistency,
	"monitor":     runMonitor,
	"history":     runHistory,
	"explore":     runExplore,
	"replay":      runReplay,
	"policy-hash": runPolicyHash,
}

func main() { cli.MainExit("zt-audit", usage, commands, exitCode) }

// exitCode: 0 ok, 1 a verdict (cli.Fail: verification failed, replay
// disagreed), 2 anything else (the input was unusable or unreadable).
var exitCode = cli.VerdictExit("zt-audit")

// parseArgs parses the flags of a subcommand; -h prints h and the flags.
func parseArgs(fs *flag.FlagSet, args []string, h cli.Help) error { return cli.Parse(fs, args, h) }

// parseInterleaved parses args whose operands (files) may come before,
// between or after the flags, and returns the operands.
func parseInterleaved(fs *flag.FlagSet, args []string, h cli.Help) ([]string, error) {
	var operands []string
	for {
		if err := parseArgs(fs, args, h); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
