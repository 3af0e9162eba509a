package daalog

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
)

// TestArtifactMatchesSource recompiles DAALog.sol with the pinned solcjs and
// requires the committed DAALog.json to be exactly that output.
func TestArtifactMatchesSource(t *testing.T) {
	solcjs, err := exec.LookPath("solcjs")
	if err != nil {
		t.Skipf("solcjs (npm solc@%s) is not installed; run `make deps` to check DAALog.json against DAALog.sol", SolcVersion)
	}
	out, err := exec.Command(solcjs, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), SolcVersion+"+") {
		t.Skipf("solcjs is %q, not the pinned solc@%s; run `npm install -g solc@%s`", strings.TrimSpace(string(out)), SolcVersion, SolcVersion)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := Compile(ctx, solcjs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Marshal(), ArtifactJSON()) {
		t.Fatalf("DAALog.json is not the output of compiling DAALog.sol with solc %s; run `make daal-contract` and commit the result (fresh runtime code hash %s, committed %s)",
			SolcVersion, a.RuntimeCodeHash, Committed().RuntimeCodeHash)
	}
}

// TestABI pins the ABI to the deployed DAALog's: selectors and event topic
// are what the field's contract uses.
func TestABI(t *testing.T) {
	want := map[string]string{
		"logAction":   "logAction(string,bytes32,string)",
		"logBatch":    "logBatch(string,bytes32,string)",
		"recordCount": "recordCount()",
		"records":     "records(uint256)",
	}
	for name, sig := range want {
		m, ok := ABI.Methods[name]
		if !ok {
			t.Fatalf("ABI has no %s", name)
		}
		if m.Sig != sig {
			t.Errorf("%s: signature %s, want %s", name, m.Sig, sig)
		}
	}
	for _, name := range []string{"logAction", "logBatch"} {
		m := ABI.Methods[name]
		if len(m.Outputs) != 1 || m.Outputs[0].Type.String() != "uint256" {
			t.Errorf("%s returns %v, want (uint256)", name, m.Outputs)
		}
	}
	ev := ABI.Events["ActionLogged"]
	if ev.Sig != "ActionLogged(uint256,string,bytes32,uint256,string)" {
		t.Errorf("event signature %s", ev.Sig)
	}
	if vdaal.ActionLoggedTopic != crypto.Keccak256Hash([]byte("ActionLogged(uint256,string,bytes32,uint256,string)")) {
		t.Error("ActionLogged topic is not keccak256 of its signature")
	}
	indexed := []bool{true, true, true, false, false}
	for i, in := range ev.Inputs {
		if in.Indexed != indexed[i] {
			t.Errorf("event input %d (%s): indexed %v", i, in.Name, in.Indexed)
		}
	}
	if got := crypto.Keccak256Hash(RuntimeCode()); got != RuntimeCodeHash {
		t.Errorf("runtime_code_hash %s is not keccak256 of runtime_bytecode (%s)", RuntimeCodeHash, got)
	}
}

// TestABIIsVerifiers: verifier/daal decodes calls and events with its own
// copy of the ABI (it imports nothing from log/); it must be the artifact's.
func TestABIIsVerifiers(t *testing.T) {
	var got, want bytes.Buffer
	if err := json.Compact(&got, vdaal.ABIJSON()); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&want, Committed().ABI); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("verifier/daal/DAALog.abi.json is not the \"abi\" of DAALog.json; run `make daal-contract`, which writes both")
	}
}

// TestContractOnSimulatedChain deploys the artifact on go-ethereum's
// simulated chain and exercises both write functions, the event, the
// getters and the code hash.
func TestContractOnSimulatedChain(t *testing.T) {
	key, _ := crypto.GenerateKey()
	from := crypto.PubkeyToAddress(key.PublicKey)
	sim := simulated.NewBackend(types.GenesisAlloc{from: {Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}})
	defer sim.Close()
	c := sim.Client()
	ctx := context.Background()
	chainID, _ := c.ChainID(ctx)
	signer := types.LatestSignerForChainID(chainID)
	nonce := uint64(0)
	send := func(to *common.Address, data []byte) *types.Receipt {
		t.Helper()
		tip := big.NewInt(params.GWei)
		head, _ := c.HeaderByNumber(ctx, nil)
		fee := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
		tx := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: fee, Gas: 3_000_000, To: to, Data: data})
		nonce++
		if err := c.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		sim.Commit()
		r, err := c.TransactionReceipt(ctx, tx.Hash())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := send(nil, DeployCode())
	if r.Status != 1 {
		t.Fatal("deploy failed")
	}
	addr := r.ContractAddress
	code, err := c.CodeAt(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if crypto.Keccak256Hash(code) != RuntimeCodeHash {
		t.Fatalf("deployed code hash %s, artifact says %s", crypto.Keccak256Hash(code), RuntimeCodeHash)
	}
	root := crypto.Keccak256Hash([]byte("root"))
	data, _ := PackLogBatch("example.com/log", root, `{"v":1}`)
	r = send(&addr, data)
	if r.Status != 1 || len(r.Logs) != 1 {
		t.Fatalf("logBatch: status %d, %d logs", r.Status, len(r.Logs))
	}
	ev, err := vdaal.ParseActionLogged(r.Logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.RecordID.Uint64() != 1 || ev.ActionHash != root || ev.AgentTopic != vdaal.AgentTopic("example.com/log") || ev.Metadata != `{"v":1}` {
		t.Fatalf("event %+v", ev)
	}
	data, _ = PackLogAction("agent", crypto.Keccak256Hash([]byte("a")), "m")
	if r = send(&addr, data); r.Status != 1 {
		t.Fatal("logAction failed")
	}
	ev, _ = vdaal.ParseActionLogged(r.Logs[0])
	if ev.RecordID.Uint64() != 2 {
		t.Fatalf("second record id %v", ev.RecordID)
	}
	// A zero hash is refused: the transaction fails.
	data, _ = PackLogBatch("example.com/log", [32]byte{}, "")
	if r = send(&addr, data); r.Status != 0 {
		t.Fatal("a zero root was accepted")
	}
	out, err := c.CallContract(ctx, ethereumCall(addr, PackRecordCount()), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := UnpackRecordCount(out)
	if err != nil || n.Uint64() != 2 {
		t.Fatalf("recordCount %v %v", n, err)
	}
	in, _ := ABI.Pack("records", big.NewInt(1))
	out, err = c.CallContract(ctx, ethereumCall(addr, in), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ABI.Unpack("records", out)
	if err != nil || v[0].(string) != "example.com/log" || v[1].([32]byte) != root || v[3].(string) != `{"v":1}` {
		t.Fatalf("records(1) = %v %v", v, err)
	}
	call, err := vdaal.ParseCall(data)
	if err != nil || call.Method != "logBatch" || call.AgentID != "example.com/log" {
		t.Fatalf("ParseCall %+v %v", call, err)
	}
}

func ethereumCall(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}
