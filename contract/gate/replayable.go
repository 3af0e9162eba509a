package gate

import "github.com/zt-infra/ztlog/contract/entry"

// CommittableReasons is what the gate commits of a decision's reasons:
// at most maxReasons, each code and message cleaned and cut to size. A
// replay of a decision compares reasons through it (contract/gate/replay).
func CommittableReasons(rs []entry.Reason) []entry.Reason { return committable(rs) }

// RefusalCodes are the reason codes of the gate's own refusals, made
// before the policy is asked (and attestation.policy_mismatch, made after
// it): a decision carrying one was not, or not only, the policy's.
var RefusalCodes = []string{ReasonActorMismatch, ReasonUnregistered, ReasonRevoked, ReasonBroker,
	ReasonAttestationInvalid, ReasonPolicyMismatch, "guardrail.error", "user.*"}
