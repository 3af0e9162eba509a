package main

import (
	"testing"

	"github.com/zt-infra/ztlog/attest"
)

// A remote broker's answer whose outcome lacks what it needs (an exit for
// ok and failed, a reason for error) is reported as incomplete, before
// finish would read the missing part.
func TestIncompleteOutcome(t *testing.T) {
	for _, c := range []struct {
		p        attest.BrokerResult
		complete bool
	}{
		{attest.BrokerResult{Outcome: attest.OutcomeOK}, false},
		{attest.BrokerResult{Outcome: attest.OutcomeFailed}, false},
		{attest.BrokerResult{Outcome: attest.OutcomeError}, false},
		{attest.BrokerResult{Outcome: "maybe", Exit: &attest.Exit{}}, false},
		{attest.BrokerResult{Outcome: attest.OutcomeOK, Exit: &attest.Exit{}}, true},
		{attest.BrokerResult{Outcome: attest.OutcomeFailed, Exit: &attest.Exit{Status: 1}}, true},
		{attest.BrokerResult{Outcome: attest.OutcomeError, Error: &attest.ErrorInfo{Class: "sandbox"}}, true},
	} {
		if why := incompleteOutcome(&c.p); (why == "") != c.complete {
			t.Errorf("outcome %q (exit %v, error %v): %q, want complete %v", c.p.Outcome, c.p.Exit, c.p.Error, why, c.complete)
		}
	}
}
