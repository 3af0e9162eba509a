package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The golden DAAL proof of verifier/daal, verified by the command as an
// auditor would: exit 0 valid, 1 invalid, 2 unusable input.
func TestDAALVerifyExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "zt-audit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const td = "../../verifier/daal/testdata/"
	var trust struct {
		LogKey   string `json:"log_key"`
		ChainID  uint64 `json:"chain_id"`
		Contract string `json:"contract"`
		Sender   string `json:"sender"`
	}
	raw, err := os.ReadFile(td + "proof-v1.trust.json")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &trust)
	run := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	verify := func(proof string, extra ...string) (int, string) {
		return run(append([]string{"daal", "verify", proof, "--log-key", trust.LogKey, "--chain-id", "1337", "--contract", trust.Contract, "--sender", trust.Sender}, extra...)...)
	}
	if code, out := verify(td+"proof-v1.json", "--receipt", td+"receipt-dump-v1.json"); code != 0 || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("golden proof: exit %d\n%s", code, out)
	}
	if code, out := verify(td+"proof-v1.json", "--json"); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("--json: exit %d\n%s", code, out)
	}
	code, out := run("daal", "verify", td+"proof-v1.json", "--log-key", trust.LogKey, "--chain-id", "1337", "--contract", trust.Contract,
		"--sender", "0x0000000000000000000000000000000000000001")
	if code != 1 || !strings.Contains(out, "sender") {
		t.Fatalf("wrong sender: exit %d\n%s", code, out)
	}
	garbage := filepath.Join(t.TempDir(), "g.json")
	os.WriteFile(garbage, []byte("not json"), 0o644)
	if code, out := verify(garbage); code != 2 {
		t.Fatalf("garbage: exit %d\n%s", code, out)
	}
	if code, _ := run("daal", "verify", td+"proof-v1.json"); code != 2 {
		t.Fatalf("no trust flags: exit %d", code)
	}
	// Split-view evidence from an alert.
	ev := func(file string) (int, string) {
		return run("daal", "evidence", file, "--log-key", trust.LogKey, "--chain-id", "1337", "--contract", trust.Contract, "--sender", trust.Sender)
	}
	// The golden alert was made with another trust (its own simulated chain).
	raw, err = os.ReadFile(td + "split-view-alert-v1.trust.json")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &trust)
	if code, out := ev(td + "split-view-alert-v1.json"); code != 0 || !strings.Contains(out, "PROVEN") {
		t.Fatalf("evidence: exit %d\n%s", code, out)
	}
	var alert map[string]any
	raw, _ = os.ReadFile(td + "split-view-alert-v1.json")
	json.Unmarshal(raw, &alert)
	e := alert["evidence"].(map[string]any)
	e["log_root"] = e["on_chain_root"]
	b, _ := json.Marshal(alert)
	forged := filepath.Join(t.TempDir(), "forged.json")
	os.WriteFile(forged, b, 0o644)
	if code, out := ev(forged); code != 1 {
		t.Fatalf("doctored evidence: exit %d\n%s", code, out)
	}
	if code, _ := run("nonsense"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
