// Command ztlog is the evidence service.
//
//	ztlog serve   [flags]                   serve the log and, with an identity source, the decision path
//	ztlog dev     [--data-dir D] [--listen A]  the embedded default, for trying it out
//	ztlog keygen  --origin O --out FILE     create the log's checkpoint signing key
//	ztlog daal    keygen|deploy|anchor|reconcile|status   DAAL anchoring (DAAL.md)
//	ztlog receipt-keygen --out FILE         create a receipt signing key
//
// Every serve flag can also be given as an environment variable
// (ZTLOG_<FLAG> with dashes as underscores, e.g. ZTLOG_DATA_DIR) or as a key
// of the JSON object in --config FILE; a flag on the command line wins over
// the environment, which wins over the file.
package main

import (
	"context"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
)

const usage = `ztlog: the evidence service for AI-agent actions

usage:
  ztlog serve  [flags]      serve the evidence log (ztlog serve -h for flags)
  ztlog dev    [flags]      start the embedded default under a data directory
  ztlog keygen --origin O --out FILE
                            create a log checkpoint key; prints the verifier key
  ztlog daal   SUBCOMMAND   anchor checkpoints on the DAAL contract and reconcile
                            (ztlog daal -h)
  ztlog receipt-keygen --out FILE [--alg EdDSA|ES256]
                            create a receipt signing key (private JWK); prints its kid
  ztlog version             print the module version and VCS revision (also --version)
`

func main() {
	cli.Main("ztlog", usage, map[string]cli.Command{
		"serve":          runServe,
		"dev":            runDev,
		"keygen":         func(_ context.Context, args []string) error { return runKeygen(args) },
		"daal":           runDAAL,
		"receipt-keygen": func(_ context.Context, args []string) error { return runReceiptKeygen(args) },
	})
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func (usageError) UsageError() bool { return true }

func (e usageError) Unwrap() error { return e.error }
