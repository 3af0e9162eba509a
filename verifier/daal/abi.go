package daal

import (
	_ "embed"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// The DAALog contract's ABI, as verification reads it: the calldata of
// logAction and logBatch, and the ActionLogged event (DAAL.md, "The ABI is
// the field contract's"). DAALog.abi.json is the "abi" member of the
// compiled artifact, log/anchor/daal/daalog/DAALog.json; a test there
// requires the two to be the same.
//
//go:embed DAALog.abi.json
var abiJSON string

var (
	// ABI is the parsed contract ABI.
	ABI abi.ABI
	// ActionLoggedTopic is topic 0 of the ActionLogged event.
	ActionLoggedTopic common.Hash
)

func init() {
	var err error
	ABI, err = abi.JSON(strings.NewReader(abiJSON))
	if err != nil {
		panic("daal: DAALog.abi.json: " + err.Error())
	}
	ActionLoggedTopic = ABI.Events["ActionLogged"].ID
}

// ABIJSON is DAALog.abi.json exactly as committed.
func ABIJSON() []byte { return []byte(abiJSON) }

// AgentTopic is the topic of an indexed agentId: keccak256 of its bytes.
func AgentTopic(agentID string) common.Hash { return crypto.Keccak256Hash([]byte(agentID)) }

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
		return nil, fmt.Errorf("daalog: %s input: %w", m.Name, err)
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
		return nil, fmt.Errorf("daalog: ActionLogged data: %w", err)
	}
	return &ActionLogged{
		RecordID:   new(big.Int).SetBytes(l.Topics[1][:]),
		AgentTopic: l.Topics[2],
		ActionHash: l.Topics[3],
		Timestamp:  v[0].(*big.Int),
		Metadata:   v[1].(string),
	}, nil
}
