//go:build ignore

// gen_artifact compiles DAALog.sol with the pinned solcjs and rewrites
// DAALog.json, and verifier/daal's copy of its ABI (DAALog.abi.json). Run
// by `make daal-contract`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
)

// verifierABI is verifier/daal's copy of the ABI, from this directory.
const verifierABI = "../../../../verifier/daal/DAALog.abi.json"

func main() {
	solcjs := os.Getenv("SOLCJS")
	if solcjs == "" {
		solcjs = "solcjs"
	}
	a, err := daalog.Compile(context.Background(), solcjs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "daal-contract:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("DAALog.json", a.Marshal(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "daal-contract:", err)
		os.Exit(1)
	}
	var abi bytes.Buffer
	if err := json.Indent(&abi, a.ABI, "", "  "); err != nil {
		fmt.Fprintln(os.Stderr, "daal-contract: abi:", err)
		os.Exit(1)
	}
	abi.WriteByte('\n')
	if err := os.WriteFile(verifierABI, abi.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "daal-contract:", err)
		os.Exit(1)
	}
	fmt.Println("DAALog.json: runtime code hash", a.RuntimeCodeHash)
}
