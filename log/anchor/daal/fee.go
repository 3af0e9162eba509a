package daal

import (
	"fmt"
	"math"
	"math/big"

	"github.com/ethereum/go-ethereum/params"
)

// MaxFeeCap converts a fee cap per gas in gwei (AnchorConfig.MaxFeeCap) to
// wei: nil for 0 (no limit). A negative, NaN or infinite value is refused
// rather than taken for no limit, and so is a fraction of a wei, which
// would cap the fee at 0.
func MaxFeeCap(gwei float64) (*big.Int, error) {
	switch {
	case math.IsNaN(gwei) || math.IsInf(gwei, 0) || gwei < 0:
		return nil, fmt.Errorf("fee cap %v: want a number of gwei of at least 0.000000001, or 0 for no limit", gwei)
	case gwei > 0 && gwei*params.GWei < 1:
		return nil, fmt.Errorf("fee cap %v is less than one wei per gas; want at least 0.000000001 gwei, or 0 for no limit", gwei)
	case gwei == 0:
		return nil, nil
	}
	wei, _ := new(big.Float).Mul(big.NewFloat(gwei), big.NewFloat(params.GWei)).Int(nil)
	return wei, nil
}
