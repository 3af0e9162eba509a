package daalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
)

// The compiler and settings the committed artifact is built with. Changing
// any of them changes the runtime code hash that reconciliation expects.
const (
	// SolcVersion is the pinned solc release (npm package solc@SolcVersion,
	// whose command is solcjs).
	SolcVersion = "0.8.30"
	// EVMVersion is the EVM the contract targets: paris has no PUSH0, so
	// the code runs on every EVM chain, L2s included.
	EVMVersion = "paris"
	// OptimizerRuns is solc's optimizer setting.
	OptimizerRuns = 200
)

// Compile compiles Source with the solcjs command at solcjs (pinned
// SolcVersion, checked) and returns the artifact. It is what
// `make daal-contract` runs and what the artifact test compares against.
func Compile(ctx context.Context, solcjs string) (*Artifact, error) {
	ver, err := exec.CommandContext(ctx, solcjs, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s --version: %w (install it with `npm install -g solc@%s`)", solcjs, err, SolcVersion)
	}
	full := strings.TrimSpace(string(ver))
	if !strings.HasPrefix(full, SolcVersion+"+") {
		return nil, fmt.Errorf("%s is solc %s, the artifact is pinned to %s (npm install -g solc@%s)", solcjs, full, SolcVersion, SolcVersion)
	}
	input := map[string]any{
		"language": "Solidity",
		"sources":  map[string]any{"DAALog.sol": map[string]string{"content": Source}},
		"settings": map[string]any{
			"optimizer":       map[string]any{"enabled": true, "runs": OptimizerRuns},
			"evmVersion":      EVMVersion,
			"outputSelection": map[string]any{"*": map[string][]string{"*": {"abi", "evm.bytecode.object", "evm.deployedBytecode.object"}}},
		},
	}
	in, _ := json.Marshal(input)
	cmd := exec.CommandContext(ctx, solcjs, "--standard-json")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("solcjs --standard-json: %w: %s", err, stderr.String())
	}
	// solcjs may print notices before the JSON document.
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	var res struct {
		Errors []struct {
			Severity         string `json:"severity"`
			FormattedMessage string `json:"formattedMessage"`
		} `json:"errors"`
		Contracts map[string]map[string]struct {
			ABI json.RawMessage `json:"abi"`
			EVM struct {
				Bytecode         struct{ Object string } `json:"bytecode"`
				DeployedBytecode struct{ Object string } `json:"deployedBytecode"`
			} `json:"evm"`
		} `json:"contracts"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("solcjs output is not JSON: %w", err)
	}
	var msgs []string
	for _, e := range res.Errors {
		if e.Severity == "error" {
			msgs = append(msgs, e.FormattedMessage)
		}
	}
	if len(msgs) > 0 {
		return nil, errors.New("solc: " + strings.Join(msgs, "\n"))
	}
	c, ok := res.Contracts["DAALog.sol"]["DAALog"]
	if !ok {
		return nil, errors.New("solc output has no DAALog contract")
	}
	var abiBuf bytes.Buffer
	if err := json.Indent(&abiBuf, c.ABI, "  ", "  "); err != nil {
		return nil, err
	}
	runtime, err := hex.DecodeString(c.EVM.DeployedBytecode.Object)
	if err != nil || len(runtime) == 0 {
		return nil, fmt.Errorf("solc output: bad deployed bytecode: %w", err)
	}
	src := sha256.Sum256([]byte(Source))
	return &Artifact{
		Contract:        "DAALog",
		Compiler:        "solc " + full,
		EVMVersion:      EVMVersion,
		OptimizerRuns:   OptimizerRuns,
		SourceSHA256:    hex.EncodeToString(src[:]),
		ABI:             json.RawMessage(abiBuf.Bytes()),
		Bytecode:        "0x" + c.EVM.Bytecode.Object,
		RuntimeBytecode: "0x" + c.EVM.DeployedBytecode.Object,
		RuntimeCodeHash: crypto.Keccak256Hash(runtime).Hex(),
	}, nil
}
