package daal

import (
	"math"
	"testing"
)

// A fee cap of 0 is no limit; a negative value, NaN, infinity or less than
// a wei per gas is refused rather than taken for no limit (or a cap of 0).
func TestMaxFeeCapRefuses(t *testing.T) {
	for _, gwei := range []float64{-1, math.NaN(), math.Inf(1), math.Inf(-1), 1e-10} {
		if wei, err := MaxFeeCap(gwei); err == nil {
			t.Errorf("MaxFeeCap(%v) = %v, want an error", gwei, wei)
		}
	}
}

func TestMaxFeeCapZeroIsNoLimit(t *testing.T) {
	wei, err := MaxFeeCap(0)
	if err != nil {
		t.Fatal(err)
	}
	if wei != nil {
		t.Errorf("MaxFeeCap(0) = %v, want nil (no limit)", wei)
	}
}

func TestMaxFeeCapInWei(t *testing.T) {
	for _, c := range []struct {
		gwei float64
		wei  string
	}{{1.5, "1500000000"}, {1e-9, "1"}, {30, "30000000000"}} {
		wei, err := MaxFeeCap(c.gwei)
		if err != nil {
			t.Errorf("MaxFeeCap(%v): %v", c.gwei, err)
			continue
		}
		if wei.String() != c.wei {
			t.Errorf("MaxFeeCap(%v) = %s wei, want %s", c.gwei, wei, c.wei)
		}
	}
}
