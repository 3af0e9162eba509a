//go:build ignore

// gen_artifact compiles DAALog.sol with the pinned solcjs and rewrites
// DAALog.json. Run by `make daal-contract`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
)

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
	fmt.Println("DAALog.json: runtime code hash", a.RuntimeCodeHash)
}
