package receipt

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// TestDeferWitnessCheck: the agent side (DeferWitnessCheck, no policy)
// accepts a witnessed receipt whose form is right and leaves the
// checkpoint to the broker; it still refuses a malformed one, and a policy,
// when given, is always applied.
func TestDeferWitnessCheck(t *testing.T) {
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(read(t, "jwks.json"), &jwks); err != nil {
		t.Fatal(err)
	}
	tok := func(name string) string {
		return strings.TrimSpace(string(read(t, filepath.Join(witnessedDir, name))))
	}
	agent := witnessedWant
	agent.DeferWitnessCheck = true
	c, err := Verify(tok("valid.jws"), &jwks, agent)
	if err != nil {
		t.Fatalf("valid witnessed receipt on the agent side: %v", err)
	}
	if c.Assurance != Witnessed {
		t.Errorf("assurance %q, want %q", c.Assurance, Witnessed)
	}
	// The quorum is the broker's to check: without the policy the agent
	// cannot tell, and accepts.
	if _, err := Verify(tok("no-cosignature.jws"), &jwks, agent); err != nil {
		t.Errorf("uncosigned checkpoint on the agent side without a policy: %v, want accepted (the broker checks it)", err)
	}
	if _, err := Verify(tok("proof-other-index.jws"), &jwks, agent); !errors.Is(err, ErrMalformed) {
		t.Errorf("proof of another index on the agent side: %v, want ErrMalformed", err)
	}
	pol, err := trustpolicy.Parse(read(t, filepath.Join(witnessedDir, "trust.policy")))
	if err != nil {
		t.Fatal(err)
	}
	agent.Witnesses = pol
	if _, err := Verify(tok("no-cosignature.jws"), &jwks, agent); !errors.Is(err, ErrUnwitnessed) {
		t.Errorf("uncosigned checkpoint with a policy and DeferWitnessCheck: %v, want ErrUnwitnessed", err)
	}
}
