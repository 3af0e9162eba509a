package attest

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// A long error message is cut for its claim without splitting a character,
// so the claim stays valid UTF-8 and commits byte for byte.
func TestBrokerResultClaimsCutMessageOnACharacter(t *testing.T) {
	signer := spiffeid.RequireFromString("spiffe://td/broker")
	for _, msg := range []string{
		strings.Repeat("a", MaxClaimMessage-1) + "é" + "tail", // é straddles the limit
		strings.Repeat("a", MaxClaimMessage-2) + "😀",          // 4 bytes straddling it
		strings.Repeat("é", MaxClaimMessage),                  // cut on a boundary
		"short",
	} {
		c := BrokerResultClaims(signer, &BrokerResult{Error: &ErrorInfo{Class: "spawn", Message: msg}})
		got := c["error.message"]
		if !utf8.ValidString(got) || len(got) > MaxClaimMessage || !strings.HasPrefix(msg, got) {
			t.Errorf("message of %d bytes: claim of %d bytes, valid UTF-8 %v", len(msg), len(got), utf8.ValidString(got))
		}
		if len(msg) <= MaxClaimMessage && got != msg {
			t.Errorf("short message changed: %q", got)
		}
		if len(msg) > MaxClaimMessage && len(got) < MaxClaimMessage-3 {
			t.Errorf("cut %d bytes short of the limit", MaxClaimMessage-len(got))
		}
	}
}
