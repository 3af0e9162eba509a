package daal

import "testing"

func FuzzParseCall(f *testing.F) {
	d, _ := ABI.Pack("logBatch", "o", [32]byte{1}, "m")
	f.Add(d)
	d, _ = ABI.Pack("logAction", "agent", [32]byte{2}, `{"x":1}`)
	f.Add(d)
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCall(in)
		if err != nil {
			return
		}
		again, err := ABI.Pack(c.Method, c.AgentID, [32]byte(c.Hash), c.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCall(again); err != nil {
			t.Fatalf("re-encoded call does not parse: %v", err)
		}
	})
}
