package attest

import (
	"bytes"
	stdjson "encoding/json"
	"testing"
)

// protojsonPayload is the statement's payload by its definition: the
// in-toto Statement through protojson, then JCS.
func protojsonPayload(predicateType, actionDigest string, p any) ([]byte, error) {
	s, err := Statement(predicateType, actionDigest, p)
	if err != nil {
		return nil, err
	}
	return Payload(s)
}

// The direct payload is byte for byte the protojson one, for both
// predicates ztlog signs.
func TestStatementPayloadMatchesProtojson(t *testing.T) {
	for _, c := range []struct {
		name, typ string
		p         any
	}{
		{"runtime context", RuntimeContextType, vectorRuntimeContext()},
		{"broker result", BrokerResultType, vectorBrokerResult()},
	} {
		want, err := protojsonPayload(c.typ, vectorAction, c.p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := statementPayload(c.typ, vectorAction, c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: direct payload\n%s\nprotojson payload\n%s", c.name, got, want)
		}
	}
}

// A bad action digest is refused as Statement refuses it.
func TestStatementPayloadRefusesABadDigest(t *testing.T) {
	if _, err := statementPayload(BrokerResultType, "sha256:zz", vectorBrokerResult()); err == nil {
		t.Fatal("a malformed action digest was accepted")
	}
}

// FuzzStatementPayload: for any JSON object as the predicate, the direct
// payload equals the protojson one (or both fail).
func FuzzStatementPayload(f *testing.F) {
	for _, p := range []any{vectorRuntimeContext(), vectorBrokerResult()} {
		b, _ := stdjson.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte(`{"n":9007199254740993,"f":1e21,"s":"\u2028<>&\ud800","e":{},"a":[],"z":null,"t":true}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p map[string]any
		if stdjson.Unmarshal(raw, &p) != nil || p == nil {
			return
		}
		want, werr := protojsonPayload(BrokerResultType, vectorAction, p)
		got, gerr := statementPayload(BrokerResultType, vectorAction, p)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("protojson error %v, direct error %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("direct payload\n%s\nprotojson payload\n%s", got, want)
		}
	})
}
