// Package reasons holds the gate's reason codes and what it commits of a
// decision's reasons, apart from the gate itself so that a replay of
// decisions (contract/gate/replay) compares through the very same code
// without linking the gate's server side.
package reasons

import (
	"fmt"
	"strings"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/text"
)

// Reason codes the gate itself commits (policy reasons come from the PDP).
const (
	ActorMismatch = "identity.actor_mismatch"
	Unregistered  = "agent.unregistered"
	Revoked       = "agent.revoked"
	Broker        = "broker.not_allowed"
	// AttestationInvalid: the attestation sent does not verify, or does
	// not match the request (broker, sandbox).
	AttestationInvalid = "attestation.invalid"
	// PolicyMismatch: the agent attested that it expects another policy
	// version than the one that decided.
	PolicyMismatch = "attestation.policy_mismatch"
	// GuardrailError: the arguments could not be inspected.
	GuardrailError = "guardrail.error"
)

// Limits on what a policy's reasons may add to an entry, so that no policy
// can make a decision too large (or otherwise impossible) to commit.
const (
	MaxReasons       = 16
	MaxReasonCode    = 128
	MaxReasonMessage = 1024
)

// Committable returns reasons that the entry format accepts: at most
// MaxReasons, codes and messages cut to size, control characters replaced.
func Committable(rs []entry.Reason) []entry.Reason {
	if len(rs) > MaxReasons {
		rs = append(rs[:MaxReasons-1:MaxReasons-1], entry.Reason{Code: "policy.more_reasons", Message: fmt.Sprintf("%d further reasons not recorded", len(rs)-MaxReasons+1)})
	}
	out := make([]entry.Reason, len(rs))
	for i, r := range rs {
		code := Clean(r.Code, MaxReasonCode)
		if code == "" {
			code = "policy.reason"
		}
		out[i] = entry.Reason{Code: code, Message: Clean(r.Message, MaxReasonMessage)}
	}
	return out
}

// Clean replaces the characters free text may not hold (controls, bidi
// overrides and isolates, line separators: text.Refused) with spaces and
// cuts s to at most max bytes on a character boundary.
func Clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if text.IsRefused(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return text.Prefix(s, max)
}
