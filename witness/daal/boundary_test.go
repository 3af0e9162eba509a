package daal

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGoEthereumStaysInDAAL: go-ethereum is a heavy dependency. The decision
// path, the log and the offline verifier must never link it; only the DAAL
// packages and the commands that use them do.
func TestGoEthereumStaysInDAAL(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		var lerr error
		if gobin, lerr = exec.LookPath("go"); lerr != nil {
			t.Skip("the go command is not installed; cannot list dependencies")
		}
	}
	root := "../.."
	for _, pattern := range []string{"./contract/...", "./verifier/...", "./log/...", "./attest/..."} {
		cmd := exec.Command(gobin, "list", "-deps", "-test=false", "-f", "{{.ImportPath}}", pattern)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") {
				continue
			}
			t.Fatalf("go list %s: %v\n%s", pattern, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/ethereum/go-ethereum") {
				t.Errorf("%s imports %s: go-ethereum must stay inside witness/daal and the commands that use it", pattern, dep)
				break
			}
		}
	}
}
