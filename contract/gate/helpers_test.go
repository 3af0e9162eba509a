package gate_test

import (
	"context"

	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/internal/devca"
)

func devca0() devca.SVIDOptions { return devca.SVIDOptions{} }

// panicPolicy is a policy whose engine panics.
type panicPolicy struct{ pdp.Policy }

func (panicPolicy) Evaluate(context.Context, *pdp.Input) (pdp.Decision, error) {
	panic("engine bug")
}
