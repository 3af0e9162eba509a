// Package daalog is ztlog's own DAALog contract: its Solidity source
// (DAALog.sol), the committed compiler artifact (DAALog.json: ABI, creation
// bytecode, runtime bytecode and the keccak-256 hash of the runtime code),
// and hand-written Go bindings over go-ethereum's accounts/abi.
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
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
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
	// ActionLoggedTopic is topic 0 of the ActionLogged event.
	ActionLoggedTopic common.Hash
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
	ActionLoggedTopic = ABI.Events["ActionLogged"].ID
	RuntimeCodeHash = common.HexToHash(committed.RuntimeCodeHash)
}

// Committed returns the committed artifact.
func Committed() *Artifact { c := *committed; return &c }

// DeployCode is the contract creation code (the constructor takes no
// arguments).
func DeployCode() []byte { return common.FromHex(committed.Bytecode) }

// RuntimeCode is the code a deployed DAALog holds.
func RuntimeCode() []byte { return common.FromHex(committed.RuntimeBytecode) }

// AgentTopic is the topic of an indexed agentId: keccak256 of its bytes.
func AgentTopic(agentID string) common.Hash { return crypto.Keccak256Hash([]byte(agentID)) }

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

// Call is a decoded logAction or logBatch transaction input.
type Call struct {
	// Method is "logAction" or "logBatch".
	Method   string
	AgentID  string
	Hash     common.Hash
	Metadata string
}

// ErrNotDAALogCall is returned by ParseCall for input that is neither
// logAction nor logBatch.
var ErrNotDAALogCall = errors.New("daalog: not a logAction or logBatch call")

// ParseCall decodes a transaction's input.
func ParseCall(input []byte) (*Call, error) {
	if len(input) < 4 {
		return nil, ErrNotDAALogCall
	}
	m, err := ABI.MethodById(input[:4])
	if err != nil || (m.Name != "logAction" && m.Name != "logBatch") {
		return nil, ErrNotDAALogCall
	}
	v, err := m.Inputs.Unpack(input[4:])
	if err != nil {
		return nil, fmt.Errorf("daalog: %s input: %v", m.Name, err)
	}
	return &Call{Method: m.Name, AgentID: v[0].(string), Hash: v[1].([32]byte), Metadata: v[2].(string)}, nil
}

// ActionLogged is a decoded ActionLogged event.
type ActionLogged struct {
	RecordID *big.Int
	// AgentTopic is keccak256(agentId): an indexed string's value is not
	// in the log, only its hash.
	AgentTopic common.Hash
	ActionHash common.Hash
	Timestamp  *big.Int
	Metadata   string
}

// ParseActionLogged decodes an ActionLogged event; the log must carry the
// event's four topics.
func ParseActionLogged(l *types.Log) (*ActionLogged, error) {
	if len(l.Topics) != 4 || l.Topics[0] != ActionLoggedTopic {
		return nil, errors.New("daalog: not an ActionLogged event")
	}
	v, err := ABI.Events["ActionLogged"].Inputs.NonIndexed().Unpack(l.Data)
	if err != nil {
		return nil, fmt.Errorf("daalog: ActionLogged data: %v", err)
	}
	return &ActionLogged{
		RecordID:   new(big.Int).SetBytes(l.Topics[1][:]),
		AgentTopic: l.Topics[2],
		ActionHash: l.Topics[3],
		Timestamp:  v[0].(*big.Int),
		Metadata:   v[1].(string),
	}, nil
}
