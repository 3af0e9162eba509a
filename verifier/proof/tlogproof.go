package proof

import (
	"fmt"

	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// VerifyTLogProof checks that entry is in the log at p.Index: p's checkpoint
// verifies against pol (the log's signature and the witness quorum) and the
// inclusion path leads from entry's RFC 6962 leaf hash to the checkpoint's
// root. It returns the verified checkpoint. Errors wrap the policy's
// (trustpolicy.ErrQuorum, ...) or ErrInclusion / ErrRange.
func VerifyTLogProof(p *tlogproof.Proof, entry []byte, pol *trustpolicy.Policy, opts trustpolicy.VerifyOptions) (*trustpolicy.Checkpoint, error) {
	cp, err := pol.VerifyCheckpoint(p.Checkpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("tlog-proof checkpoint: %w", err)
	}
	if err := Inclusion(cp, p.Index, LeafHash(entry), p.Hashes); err != nil {
		return nil, fmt.Errorf("tlog-proof: %w", err)
	}
	return cp, nil
}
