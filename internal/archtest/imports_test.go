package archtest

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/zt-infra/ztlog"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// goCmd finds the go command, or skips.
func goCmd(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err == nil {
		return gobin
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not installed; cannot list packages")
	}
	return gobin
}

// list runs `go list -json` (non-test imports only) over patterns, from
// the module root.
func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-json=ImportPath,Imports,Deps"}, patterns...)
	cmd := exec.Command(goCmd(t), args...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel is an import path relative to the module ("" for other modules).
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return ""
}

func under(r string, dirs ...string) bool {
	for _, d := range dirs {
		if r == d || strings.HasPrefix(r, d+"/") {
			return true
		}
	}
	return false
}

// The layer rules of ARCHITECTURE.md, each a predicate over the importing
// package and one of its (direct, non-test) imports inside the module.
var layerRules = []struct {
	name   string
	applet func(from string) bool
	denied func(to string) bool
}{
	{
		"log/... imports nothing from contract/, witness/ or verifier/ (but the DAAL anchorer may write verifier/daal's formats)",
		func(from string) bool { return under(from, "log") },
		func(to string) bool { return under(to, "contract", "witness", "verifier") },
	},
	{
		"verifier/... imports no server-side package (the decision service, broker, gateways, log, witness)",
		func(from string) bool { return under(from, "verifier") },
		func(to string) bool {
			return under(to, "log", "witness", "contract/server", "contract/gate", "contract/broker", "contract/client", "contract/gateway", "cmd")
		},
	},
	{
		"witness/... imports no contract/ package",
		func(from string) bool { return under(from, "witness") },
		func(to string) bool { return under(to, "contract") },
	},
	{
		"contract/... imports no witness/ package",
		func(from string) bool { return under(from, "contract") },
		func(to string) bool { return under(to, "witness") },
	},
	{
		"attest imports only the entry format and internal/",
		func(from string) bool { return under(from, "attest") },
		func(to string) bool { return !under(to, "contract/entry", "internal", "attest") },
	},
	{
		"contract formats (entry, api, receipt, capability) import no role package",
		func(from string) bool {
			return under(from, "contract/entry", "contract/api", "contract/receipt", "contract/capability")
		},
		func(to string) bool {
			return under(to, "contract/server", "contract/gate", "contract/broker", "contract/client", "contract/gateway", "log", "witness", "verifier", "cmd")
		},
	},
	{
		"internal/... imports nothing above it",
		func(from string) bool {
			return under(from, "internal") && !under(from, "internal/testutil", "internal/archtest")
		},
		func(to string) bool { return !under(to, "internal") },
	},
	{
		"nothing but a command imports cmd/",
		func(from string) bool { return !under(from, "cmd") },
		func(to string) bool { return under(to, "cmd") },
	},
}

// allowed are the arrows the rules would refuse but ARCHITECTURE.md names
// as exceptions, each with its reason.
var allowed = map[[2]string]bool{
	// An anchor is written in the format the offline verifier reads: the
	// formats and the pure reconciliation live in verifier/daal so that
	// zt-audit links only them, and the operator's anchorer reuses them.
	{"log/anchor/daal", "verifier/daal"}: true,
}

// TestLayers: every import inside the module points down the layers.
func TestLayers(t *testing.T) {
	for _, p := range list(t, "./...") {
		from := rel(p.ImportPath)
		for _, imp := range p.Imports {
			to := rel(imp)
			if to == "" {
				continue
			}
			for _, r := range layerRules {
				if r.applet(from) && r.denied(to) && !allowed[[2]string{from, to}] {
					t.Errorf("%s imports %s: breaks %q", from, to, r.name)
				}
			}
		}
	}
}

// Heavy dependencies, by module path prefix, and which binaries may link
// them.
var (
	cloudSDKs = []string{"cloud.google.com/", "github.com/aws/aws-sdk-go-v2", "google.golang.org/api/"}
	policy    = []string{"github.com/open-policy-agent/opa", "github.com/cedar-policy/cedar-go"}
	ethereum  = []string{"github.com/ethereum/go-ethereum"}
	gitleaks  = []string{"github.com/zricethezav/gitleaks"}
	// ethOnline is go-ethereum's online and operator side: none of it is
	// needed to verify DAAL evidence offline.
	ethOnline = []string{
		"github.com/ethereum/go-ethereum/ethclient", "github.com/ethereum/go-ethereum/rpc",
		"github.com/ethereum/go-ethereum/accounts/keystore", "github.com/ethereum/go-ethereum/accounts/abi/bind",
		"github.com/ethereum/go-ethereum/ethclient/simulated", "github.com/ethereum/go-ethereum/node",
	}
)

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestBinaryBoundaries: each binary (and the agent SDK) links only what its
// role needs.
func TestBinaryBoundaries(t *testing.T) {
	for _, c := range []struct {
		pkg    string
		denied []string
	}{
		{"./cmd/zt", concat(cloudSDKs, policy, ethereum, gitleaks)},
		{"./contract/client", concat(cloudSDKs, policy, ethereum, gitleaks)},
		{"./cmd/zt-witness", concat(cloudSDKs, policy, ethereum, gitleaks)},
		{"./cmd/zt-audit", concat(cloudSDKs, policy, ethOnline)},
	} {
		t.Run(strings.TrimPrefix(c.pkg, "./"), func(t *testing.T) {
			pkgs := list(t, c.pkg)
			if len(pkgs) != 1 {
				t.Fatalf("go list %s: %d packages", c.pkg, len(pkgs))
			}
			for _, d := range pkgs[0].Deps {
				for _, bad := range c.denied {
					if d == bad || strings.HasPrefix(d, bad) && (strings.HasSuffix(bad, "/") || strings.HasPrefix(d[len(bad):], "/")) {
						t.Errorf("%s links %s", c.pkg, d)
					}
				}
			}
		})
	}
}
