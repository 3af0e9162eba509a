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
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
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
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(ctx, os.Args[2:])
	case "dev":
		err = runDev(ctx, os.Args[2:])
	case "keygen":
		err = runKeygen(os.Args[2:])
	case "daal":
		err = runDAAL(ctx, os.Args[2:])
	case "receipt-keygen":
		err = runReceiptKeygen(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "ztlog: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(os.Stderr, "ztlog: %v\n", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "ztlog: error: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }
