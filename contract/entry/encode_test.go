package entry

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// fastAndReference encodes e both ways; fast is nil when the direct
// encoder handed e to the reference path.
func fastAndReference(t testing.TB, e Entry) (fast, ref []byte) {
	t.Helper()
	fast, err := appendCanonical(nil, e)
	if err != nil {
		if !errors.Is(err, errSlowPath) {
			t.Fatalf("direct encoder: %v", err)
		}
		fast = nil
	}
	ref, err = marshalReference(e)
	if err != nil {
		t.Fatalf("reference encoder: %v", err)
	}
	return fast, ref
}

// Every golden entry is written by the direct encoder (not handed to the
// reference path) and to exactly the reference bytes.
func TestDirectEncoderGolden(t *testing.T) {
	for _, g := range goldenEntries {
		if _, err := Marshal(g.entry); err != nil { // sets the header, normalizes
			t.Fatal(err)
		}
		fast, ref := fastAndReference(t, g.entry)
		if fast == nil {
			t.Errorf("%s: the direct encoder did not take it", g.file)
			continue
		}
		if !bytes.Equal(fast, ref) {
			t.Errorf("%s: direct\n%s\nreference\n%s", g.file, fast, ref)
		}
	}
}

// The cases where JCS, encoding/json and a naive encoder part ways.
func TestDirectEncoderEdges(t *testing.T) {
	base := func() *Agent {
		return &Agent{Header: Header{V: Version, Kind: KindAgent}, Time: "2026-11-21T10:00:00Z", CorrelationID: "c", Op: AgentRegister,
			ID: "spiffe://td/a", By: "spiffe://td/admin"}
	}
	for name, tc := range map[string]struct {
		edit func(a *Agent)
		slow bool // the reference path must write it
	}{
		"html and line separators": {edit: func(a *Agent) { a.Owner = "<a&b> \u2028\u2029 \"q\" \\ /" }},
		"control characters":       {edit: func(a *Agent) { a.Labels = map[string]string{"k": "\x01\b\f\n\r\t\x1f\x7f"} }},
		"non-ASCII":                {edit: func(a *Agent) { a.Owner = "é 日本 😀" }},
		// UTF-16 order puts U+1F600 (a surrogate pair, 0xD83D...) before
		// U+FB01; UTF-8 byte order puts it after.
		"utf-16 key order":   {edit: func(a *Agent) { a.Labels = map[string]string{"\uFB01": "1", "😀": "2", "a": "3", "Z": "4", "": "5"} }},
		"empty lists":        {edit: func(a *Agent) { a.Brokers = []string{}; a.Labels = map[string]string{} }},
		"long plain strings": {edit: func(a *Agent) { a.Owner = strings.Repeat("abcdefgh", 40) + "\"" + strings.Repeat("x", 17) }},
		"invalid UTF-8":      {edit: func(a *Agent) { a.Owner = "bad \xff byte" }, slow: true},
		"invalid UTF-8 key":  {edit: func(a *Agent) { a.Labels = map[string]string{"\xfe": "v"} }, slow: true},
	} {
		t.Run(name, func(t *testing.T) {
			a := base()
			tc.edit(a)
			fast, ref := fastAndReference(t, a)
			if tc.slow {
				if fast != nil {
					t.Fatalf("direct encoder wrote %q; want the reference path", fast)
				}
				return
			}
			if fast == nil {
				t.Fatal("the direct encoder did not take it")
			}
			if !bytes.Equal(fast, ref) {
				t.Fatalf("direct\n%s\nreference\n%s", fast, ref)
			}
		})
	}
	// Integers past 2^53 print differently in ECMAScript form: reference path.
	r := &Result{DecisionIndex: 1<<53 + 1}
	if _, err := appendCanonical(nil, r); !errors.Is(err, errSlowPath) {
		t.Fatalf("2^53+1: %v, want the reference path", err)
	}
	r.DecisionIndex = 1 << 53
	if _, err := appendCanonical(nil, r); err != nil {
		t.Fatalf("2^53: %v", err)
	}
	// Marshal takes the reference path for what the direct encoder refuses.
	a := base()
	a.Owner = "bad \xff byte"
	got, err := Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("\"owner\":\"bad \ufffd byte\"")) {
		t.Fatalf("Marshal: %s", got)
	}
}

// Parse's fast path takes entries whose nested members are named "kind".
func TestParseFastPathNestedKind(t *testing.T) {
	for _, kinds := range [][2]string{{"x", "y"}, {"result", "agent"}, {"decision", "policy"}} {
		a := &Agent{Time: "2026-11-21T10:00:00Z", CorrelationID: "c", Op: AgentRegister, ID: "spiffe://td/a", By: "spiffe://td/admin",
			Labels: map[string]string{"kind": kinds[0], "akind": kinds[1]}}
		leaf, err := Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(leaf, []byte(`"labels":{"akind":"`+kinds[1]+`","kind":"`+kinds[0]+`"}`)) {
			t.Fatalf("labels do not precede the top-level kind: %s", leaf)
		}
		e := parseExact(leaf)
		if e == nil {
			t.Fatalf("fast path refused %s", leaf)
		}
		if got, ok := e.(*Agent); !ok || got.Labels["kind"] != kinds[0] {
			t.Fatalf("fast path parsed %#v", e)
		}
	}
}

// FuzzDirectEncoder: for any entry value that validates, the direct
// encoder writes the reference bytes or hands the value to the reference
// path.
func FuzzDirectEncoder(f *testing.F) {
	addVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range []Kind{KindDecision, KindResult, KindAgent, KindPolicy} {
			e := newEntry(k)
			if json.Unmarshal(b, e) != nil { // lenient on purpose: any value
				continue
			}
			h := e.header()
			h.V, h.Kind = Version, e.EntryKind()
			if n, ok := e.(interface{ normalize() }); ok {
				n.normalize()
			}
			if e.Validate() != nil {
				continue
			}
			fast, err := appendCanonical(nil, e)
			if err != nil {
				continue
			}
			ref, err := marshalReference(e)
			if err != nil {
				t.Fatalf("%s: direct encoder wrote %q, reference failed: %v", k, fast, err)
			}
			if !bytes.Equal(fast, ref) {
				t.Fatalf("%s: direct\n%q\nreference\n%q", k, fast, ref)
			}
		}
	})
}

// FuzzDirectEncoderValues drives arbitrary strings, map keys and integers
// through both encoders (no validation: the encoders must agree on any
// value, valid or not).
func FuzzDirectEncoderValues(f *testing.F) {
	f.Add("owner <&>", "k", "v", "\u2028", "😀", int64(-1), uint64(1)<<53)
	f.Add("\xff", "\uFB01", "x", "", "\x00", int64(1)<<60, uint64(0))
	f.Add("s", "k", "v", ` {"b": [1.0, 1e2, "\u00e9"], "a" : null} `, "", int64(0), uint64(7))
	f.Fuzz(func(t *testing.T, s1, k1, v1, k2, v2 string, n int64, u uint64) {
		a := &Agent{Time: s1, CorrelationID: v2, Op: k2, ID: s1 + v1, Owner: s1, Brokers: []string{k1, v2},
			Labels: map[string]string{k1: v1, k2: v2}, Aliases: []string{k2, s1}, By: v1}
		exit := int(n)
		r := &Result{DecisionIndex: u, ExitStatus: &exit, Outcome: s1,
			Statement: Attestation{Digest: k1, Envelope: json.RawMessage(k2), Claims: map[string]string{v1: k2, s1: ""}, Chain: []string{v2}}}
		d := &Decision{Actor: s1, ActorAlias: k2, Reasons: []Reason{{Code: k1, Message: v1}}, Findings: []Finding{{Type: k2, Offset: int(n), Length: int(u)}},
			User: &User{Issuer: v2, Scopes: []string{s1}}}
		for _, e := range []Entry{a, r, d} {
			fast, err := appendCanonical(nil, e)
			if err != nil {
				continue
			}
			ref, err := marshalReference(e)
			if err != nil {
				t.Fatalf("direct encoder wrote %q, reference failed: %v", fast, err)
			}
			if !bytes.Equal(fast, ref) {
				t.Fatalf("direct\n%q\nreference\n%q", fast, ref)
			}
		}
	})
}
