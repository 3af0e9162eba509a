package trustpolicy

import (
	"fmt"
	"testing"

	"github.com/transparency-dev/tessera"
)

// The log collects cosignatures with Tessera's witness group, parsed from
// the same file; both readings of a policy must agree on every checkpoint.
func TestAgreesWithTessera(t *testing.T) {
	_, logV := testLogKey(t, "example.com/log")
	text := "log " + logV + "\n"
	for _, n := range []string{"X1", "X2", "X3", "Y1", "Y2"} {
		_, v := testWitnessKey(t, "witness.example/"+n)
		text += fmt.Sprintf("witness %s %s https://witness.example/%s/\n", n, v, n)
	}
	_, v := testMLDSAWitnessKey(t, "witness.example/Y3")
	text += "witness Y3 " + v + " https://witness.example/Y3/\n" +
		"group X-witnesses 2 X1 X2 X3\ngroup Y-witnesses any Y1 Y2 Y3\ngroup X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n"
	ours, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := tessera.NewWitnessGroupFromPolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s := testSigners(t)
	all := []string{"X1", "X2", "X3", "Y1", "Y2", "Y3"}
	for mask := 0; mask < 1<<len(all); mask++ {
		var picked []string
		for i, n := range all {
			if mask&(1<<i) != 0 {
				picked = append(picked, n)
			}
		}
		cp := sign(t, body("example.com/log", uint64(mask)), s.pick(picked...)...)
		_, err := ours.VerifyCheckpoint(cp, VerifyOptions{})
		if got, want := err == nil, theirs.Satisfied(cp); got != want {
			t.Errorf("cosigned by %v: ours %v (%v), Tessera %v", picked, got, err, want)
		}
	}
}
