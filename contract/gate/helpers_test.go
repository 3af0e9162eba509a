package gate_test

import (
	"context"

	"github.com/zt-infra/ztlog/contract/identity/devca"
	"github.com/zt-infra/ztlog/contract/policy"
)

func devca0() devca.SVIDOptions { return devca.SVIDOptions{} }

// panicPolicy is a policy whose engine panics.
type panicPolicy struct{ policy.Policy }

func (panicPolicy) Evaluate(context.Context, *policy.Input) (policy.Decision, error) {
	panic("engine bug")
}
