// Package daalog is ztlog's own DAALog contract: its Solidity source
// (DAALog.sol), the committed compiler artifact (DAALog.json: ABI, creation
// bytecode, runtime bytecode and the keccak-256 hash of the runtime code),
// and the Go calls that build its transactions (accounts/abi). Decoding
// calls and events, which verification needs, is verifier/daal's (ParseCall,
// ParseActionLogged), over the same ABI.
//
// The ABI is the one of the DAALog the earlier ZT system deployed:
//
//	function logAction(string agentId, bytes32 actionHash, string metadata) returns (uint256)
//	function logBatch(string agentId, bytes32 merkleRoot, string metadata) returns (uint256)
//	event ActionLogged(uint256 indexed recordId, string indexed agentId, bytes32 indexed actionHash, uint256 timestamp, string metadata)
//	function recordCount() view returns (uint256)
//	function records(uint256) view returns (string agentId, bytes32 actionHash, uint256 timestamp, string metadata)
//
// Record ids start at 1. An indexed string is stored in its topic as the
// keccak-256 hash of its bytes, so the event names an agent (for ztlog: the
// log's origin) by keccak256(origin).
//
// The artifact is regenerated with `make daal-contract` (solc from npm,
// version SolcVersion) and a test compares it with a fresh compile whenever
// that solcjs is installed.
package daalog

import (
	_ "embed"
	"encoding/json"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// Source is DAALog.sol.
//
//go:embed DAALog.sol
var Source string

//go:embed DAALog.json
var artifactJSON []byte

// Artifact is the compiled contract as committed in DAALog.json.
type Artifact struct {
	Contract        string          `json:"contract"`
	Compiler        string          `json:"compiler"`
	EVMVersion      string          `json:"evm_version"`
	OptimizerRuns   int             `json:"optimizer_runs"`
	SourceSHA256    string          `json:"source_sha256"`
	ABI             json.RawMessage `json:"abi"`
	Bytecode        string          `json:"bytecode"`
	RuntimeBytecode string          `json:"runtime_bytecode"`
	// RuntimeCodeHash is keccak256 of the runtime bytecode: the EXTCODEHASH
	// of a correctly deployed DAALog, which reconciliation checks.
	RuntimeCodeHash string `json:"runtime_code_hash"`
}

// Marshal is the artifact's committed form.
func (a *Artifact) Marshal() []byte {
	b, _ := json.MarshalIndent(a, "", "  ")
	return append(b, '\n')
}

// ArtifactJSON is DAALog.json exactly as committed.
func ArtifactJSON() []byte { return artifactJSON }

var (
	committed *Artifact
	// ABI is the parsed contract ABI.
	ABI abi.ABI
	// RuntimeCodeHash is the expected keccak256 of the deployed code.
	RuntimeCodeHash common.Hash
)

func init() {
	committed = new(Artifact)
	if err := json.Unmarshal(artifactJSON, committed); err != nil {
		panic("daalog: DAALog.json: " + err.Error())
	}
	var err error
	ABI, err = abi.JSON(strings.NewReader(string(committed.ABI)))
	if err != nil {
		panic("daalog: DAALog.json abi: " + err.Error())
	}
	RuntimeCodeHash = common.HexToHash(committed.RuntimeCodeHash)
}

// Committed returns the committed artifact.
func Committed() *Artifact { c := *committed; return &c }

// DeployCode is the contract creation code (the constructor takes no
// arguments).
func DeployCode() []byte { return common.FromHex(committed.Bytecode) }

// RuntimeCode is the code a deployed DAALog holds.
func RuntimeCode() []byte { return common.FromHex(committed.RuntimeBytecode) }

// PackLogBatch is the calldata of logBatch(agentId, merkleRoot, metadata).
func PackLogBatch(agentID string, root [32]byte, metadata string) ([]byte, error) {
	return ABI.Pack("logBatch", agentID, root, metadata)
}

// PackLogAction is the calldata of logAction(agentId, actionHash, metadata).
func PackLogAction(agentID string, actionHash [32]byte, metadata string) ([]byte, error) {
	return ABI.Pack("logAction", agentID, actionHash, metadata)
}

// PackRecordCount is the calldata of recordCount().
func PackRecordCount() []byte {
	b, _ := ABI.Pack("recordCount")
	return b
}

// UnpackRecordCount decodes recordCount()'s answer.
func UnpackRecordCount(out []byte) (*big.Int, error) {
	v, err := ABI.Unpack("recordCount", out)
	if err != nil {
		return nil, err
	}
	return v[0].(*big.Int), nil
}
