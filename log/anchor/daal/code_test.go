package daal

import (
	"errors"
	"testing"

	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
)

// CheckCode accepts ztlog's DAALog, deployed on a real (simulated) chain.
func TestCheckCodeAcceptsDAALog(t *testing.T) {
	e := newEnv(t)
	if err := e.chain.CheckCode(e.ctx, daalog.RuntimeCodeHash); err != nil {
		t.Fatalf("CheckCode of the deployed DAALog: %v", err)
	}
}

// An address without code (here, an account) is refused with a CodeError
// saying so.
func TestCheckCodeRefusesNoContract(t *testing.T) {
	e := newEnv(t)
	account := e.signer.Address()
	err := e.chainAt(account).CheckCode(e.ctx, daalog.RuntimeCodeHash)
	var ce *CodeError
	if !errors.As(err, &ce) {
		t.Fatalf("CheckCode of an account: %v, want a *CodeError", err)
	}
	if ce.Len != 0 {
		t.Errorf("code length %d, want 0", ce.Len)
	}
	if ce.Contract != account {
		t.Errorf("contract %s, want %s", ce.Contract.Hex(), account.Hex())
	}
}

// Code other than the expected is refused.
func TestCheckCodeRefusesOtherCode(t *testing.T) {
	e := newEnv(t)
	other := daalog.RuntimeCodeHash
	other[0] ^= 1
	err := e.chain.CheckCode(e.ctx, other)
	var ce *CodeError
	if !errors.As(err, &ce) {
		t.Fatalf("CheckCode against another hash: %v, want a *CodeError", err)
	}
	if ce.Got != daalog.RuntimeCodeHash {
		t.Errorf("got hash %s, want the deployed code's %s", ce.Got.Hex(), daalog.RuntimeCodeHash.Hex())
	}
}
