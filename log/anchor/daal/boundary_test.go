package daal

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const goEthereum = "github.com/ethereum/go-ethereum"

// onlineGoEthereum are go-ethereum's packages for talking to a node and
// holding keys: its RPC client, the node and p2p stack, keystores and
// generated bindings, with what is under each. Offline verification needs
// none of them. (The package accounts itself, the wallet interfaces, is
// listed alone: accounts/abi below it is offline.)
var onlineGoEthereum = []string{"ethclient/", "rpc/", "accounts/keystore/", "accounts/abi/bind/", "node/", "eth/", "p2p/", "accounts"}

// goList runs go list with format for pattern from the repository root;
// ok is false when the pattern matches no package.
func goList(t *testing.T, format, pattern string) (lines []string, ok bool) {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		var lerr error
		if gobin, lerr = exec.LookPath("go"); lerr != nil {
			t.Skip("the go command is not installed; cannot list dependencies")
		}
	}
	cmd := exec.Command(gobin, "list", "-deps=false", "-test=false", "-f", format, pattern)
	if format == "" {
		cmd = exec.Command(gobin, "list", "-deps", "-test=false", "-f", "{{.ImportPath}}", pattern)
	}
	cmd.Dir = "../../.."
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "matched no packages") || strings.Contains(stderr.String(), "no such file or directory") {
			return nil, false
		}
		t.Fatalf("go list %s: %v\n%s", pattern, err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), true
}

func isOnline(dep string) bool {
	for _, p := range onlineGoEthereum {
		if dir, tree := strings.CutSuffix(p, "/"); tree {
			if dep == goEthereum+"/"+dir || strings.HasPrefix(dep, goEthereum+"/"+p) {
				return true
			}
		} else if dep == goEthereum+"/"+p {
			return true
		}
	}
	return false
}

// TestGoEthereumStaysInDAAL: go-ethereum is a heavy dependency. The decision
// path, the log (but for this package), attest and the verifier (but for
// verifier/daal) must never link it; only the DAAL packages and the
// commands that use them do.
func TestGoEthereumStaysInDAAL(t *testing.T) {
	for _, pattern := range []string{"./contract/...", "./verifier/...", "./log/...", "./attest/...", "./witness/..."} {
		pkgs, ok := goList(t, "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", pattern)
		if !ok {
			continue
		}
		for _, line := range pkgs {
			deps := strings.Fields(line)
			pkg := deps[0]
			if pkg == "github.com/zt-infra/ztlog/verifier/daal" || strings.HasPrefix(pkg, "github.com/zt-infra/ztlog/verifier/daal/") ||
				strings.HasPrefix(pkg, "github.com/zt-infra/ztlog/log/anchor/daal") {
				continue
			}
			for _, dep := range deps[1:] {
				if strings.HasPrefix(dep, goEthereum) {
					t.Errorf("%s imports %s: go-ethereum must stay inside log/anchor/daal, verifier/daal and the commands that use them", pkg, dep)
					break
				}
			}
		}
	}
}

// TestOfflineDAALLinksNoNodeClient: verifier/daal and zt-audit link of
// go-ethereum only what offline verification needs (common, crypto, rlp,
// core/types, accounts/abi): not its RPC client, keystore or bindings.
func TestOfflineDAALLinksNoNodeClient(t *testing.T) {
	for _, pattern := range []string{"./verifier/daal", "./cmd/zt-audit"} {
		deps, ok := goList(t, "", pattern)
		if !ok {
			t.Fatalf("%s: no such package", pattern)
		}
		var ethDeps int
		for _, dep := range deps {
			if strings.HasPrefix(dep, goEthereum) {
				ethDeps++
			}
			if isOnline(dep) {
				t.Errorf("%s links %s; offline verification must not need it", pattern, dep)
			}
		}
		// The check above means something only if the package does link
		// go-ethereum's offline part.
		if ethDeps == 0 {
			t.Errorf("%s links no go-ethereum package at all: is the pattern right?", pattern)
		}
	}
}
