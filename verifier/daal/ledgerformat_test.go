package daal

import "testing"

func FuzzParseLedger(f *testing.F) {
	n := uint64(3)
	f.Add([]byte(`{"id":1,"state":"queued","attestation":"pending","origin":"o","size":1,"root":"0x00","checkpoint":"","metadata":"","chain_id":1,"contract":"","sender":"","queued_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}` + "\n"))
	a := Anchor{ID: 1, State: Submitted, Attestation: Pending, Nonce: &n, Txs: []Tx{{Hash: "0x1", Raw: "0x2"}}}
	b, _ := a.MarshalJSONLine()
	f.Add(b)
	f.Add([]byte("{\"id\":1}\n{\"id\":1"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		anchors, complete, err := ParseLedger(raw)
		if err != nil {
			return
		}
		if complete > len(raw) {
			t.Fatalf("complete %d > %d", complete, len(raw))
		}
		for _, a := range anchors {
			if a.ID == 0 || (a.State == Submitted && (a.Nonce == nil || len(a.Txs) == 0)) {
				t.Fatalf("accepted %+v", a)
			}
		}
	})
}
