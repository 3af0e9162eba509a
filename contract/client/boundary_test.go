package client

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSDKLinksNoServerSide: an agent that imports the SDK links neither the
// broker's sandbox (Landlock) nor a policy engine, a cloud SDK, go-ethereum
// or gitleaks (issue 14's binary boundaries).
func TestSDKLinksNoServerSide(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("the go command is not installed; cannot list dependencies")
		}
	}
	cmd := exec.Command(gobin, "list", "-deps", "-test=false", "-f", "{{.ImportPath}}", ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := map[string]string{
		"github.com/landlock-lsm/":                  "Landlock (the broker's sandbox)",
		"github.com/zt-infra/ztlog/contract/broker": "the broker role",
		"github.com/open-policy-agent/":             "OPA",
		"github.com/cedar-policy/":                  "Cedar",
		"cloud.google.com/":                         "a Google Cloud SDK",
		"github.com/aws/":                           "the AWS SDK",
		"github.com/ethereum/go-ethereum":           "go-ethereum",
		"github.com/zricethezav/gitleaks":           "gitleaks",
	}
	for _, dep := range strings.Fields(string(out)) {
		for prefix, what := range forbidden {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("contract/client links %s (%s)", dep, what)
			}
		}
	}
}
