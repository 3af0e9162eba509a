package federation

import (
	"context"
	"os"
	"testing"
)

// The log shows a fork signed with the same key, inconsistent with the
// last checkpoint the federator saw, and filing the evidence fails (the
// evidence directory is unusable). The fork must not be submitted to the
// local witness (which has not cosigned this log yet and would cosign it),
// and the round must report an error, not come out clean.
func TestInconsistentCheckpointNotCosignedWhenEvidenceFails(t *testing.T) {
	f := newFixture(t, serverID)
	ctx := context.Background()

	// Round 1: the honest log at 5 is seen (no local witness configured yet).
	grow(t, f.honest, 5, "h")
	fc := f.cfg.Federate
	f.cfg.Federate = nil
	if res := f.fed.Check(ctx, f.cfg.Logs[0]); len(res.Errors) != 0 || res.Size != 5 {
		t.Fatalf("honest round: %+v", res)
	}
	f.cfg.Federate = fc

	// The evidence directory becomes unusable (disk trouble, wrong mount...).
	if err := os.RemoveAll(f.evidence); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.evidence, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Round 2: the URL shows a fork (same key, other history).
	grow(t, f.fork, 12, "fork")
	f.url.set(logHandler(f.fork))
	res := f.fed.Check(ctx, f.cfg.Logs[0])
	if len(res.Errors) == 0 {
		t.Errorf("an inconsistency whose evidence could not be filed was reported clean: %+v", res)
	}
	if res.Cosigned || f.local.latest(t, f.key.Origin()) != 0 {
		t.Fatalf("the local witness cosigned the fork (size %d) although it is inconsistent with the last checkpoint seen (5): %+v",
			f.local.latest(t, f.key.Origin()), res)
	}
}
