// Command zt-replay is the auditor's replay of committed decisions: it
// fetches the policy version a decision names (or takes the files the
// auditor reviewed), checks it against the source digest the log commits,
// re-evaluates the committed input with the same engine, and says whether
// the effect and reasons are the committed ones.
//
//	zt-replay policy-hash DIR|BUNDLE [--engine opa|cedar] [--json]
//	zt-replay decision --log URL|DIR --index N [--policy-dir DIR] [--json]
//	zt-replay log --log URL|DIR [--json]
//
// It is not part of zt-audit because it links the policy engines (OPA and
// Cedar) that zt-audit, the verifier of the log itself, keeps out of its
// trust base (ARCHITECTURE.md).
//
// Exit status: 0 replayed the same, 1 different or refused, 2 unusable input.
package main

import (
	"github.com/zt-infra/ztlog/cmd/internal/cli"
)

const usage = `zt-replay: re-decide committed decisions under their committed policy

usage:
  zt-replay policy-hash DIR|BUNDLE [--engine opa|cedar] [--json]
                             the policy hash and source digest of a policy you reviewed
  zt-replay decision --log URL|DIR --index N [--policy-dir DIR] [--engine opa|cedar] [--json]
                             replay the decision at N: same or different effect and reasons
  zt-replay log --log URL|DIR [--json]
                             replay every decision in the log; report the rate

A replay re-evaluates what the policy saw: argument values were never
committed, so it uses the arguments digest and the guardrail findings as
committed. It does not verify the log (zt-audit audit does).

exit status: 0 replayed the same, 1 different or refused, 2 unusable input
`

var commands = map[string]cli.Command{
	"policy-hash": runPolicyHash,
	"decision":    runDecision,
	"log":         runLog,
}

func main() { cli.MainExit("zt-replay", usage, commands, exitCode) }

// exitCode: 0 ok, 1 a verdict (cli.Fail: verification failed, replay
// disagreed), 2 anything else (the input was unusable or unreadable).
var exitCode = cli.VerdictExit("zt-replay")
