package entry

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/ from the Go values")

const vectorDir = "../../testdata/entries"

func exitStatus(n int) *int { return &n }

// goldenEntries are the valid vectors: the Go value and its file.
var goldenEntries = []struct {
	file  string
	entry Entry
}{
	{"decision-allow.json", &Decision{
		Time:          "2026-11-21T10:00:00.123456789Z",
		CorrelationID: "c0ffee00-0000-4000-8000-000000000001",
		Actor:         "spiffe://dev.ztlog.local/agent/demo",
		Authn:         Authn{Method: "x509-svid", Serial: "5f2a", Expires: "2026-11-21T11:00:00Z"},
		Action:        "demo.echo",
		Resource:      "demo://hello",
		ArgsDigest:    "sha256:" + strings.Repeat("ab", 32),
		ActionDigest:  "sha256:" + strings.Repeat("cd", 32),
		Broker:        "spiffe://dev.ztlog.local/broker/local",
		User:          &User{Issuer: "https://idp.example", Subject: "alice", Scopes: []string{"search.deep"}},
		Effect:        Allow,
		Policy:        PolicyRef{Hash: "sha256:" + strings.Repeat("01", 32), Engine: "opa", Revision: "r1"},
		Receipt:       &ReceiptRef{ID: "rcpt-1", KeyID: "k1", Audience: "spiffe://dev.ztlog.local/broker/local", Expires: "2026-11-21T10:05:00Z"},
	}},
	{"decision-deny.json", &Decision{
		Time:          "2026-11-21T10:00:01Z",
		CorrelationID: "c0ffee00-0000-4000-8000-000000000002",
		Actor:         "spiffe://dev.ztlog.local/agent/demo",
		ClaimedActor:  "hello-world-agent",
		Authn:         Authn{Method: "jwt-svid"},
		Action:        "aws.ec2.terminate_instances",
		Resource:      "i-demo <&> \"quoted\" é",
		ActionDigest:  "sha256:" + strings.Repeat("ef", 32),
		Findings:      []Finding{{Type: "email", Arg: "body", Offset: 10, Length: 17}},
		Effect:        Deny,
		Reasons:       []Reason{{Code: "identity.actor_mismatch", Message: "body actor differs from the authenticated SPIFFE ID"}},
		Policy:        PolicyRef{Hash: "sha256:" + strings.Repeat("02", 32), Engine: "cedar"},
	}},
	{"decision-attested.json", &Decision{
		Time:               "2026-11-21T10:00:03Z",
		CorrelationID:      "c0ffee00-0000-4000-8000-000000000003",
		Actor:              "spiffe://dev.ztlog.local/agent/demo",
		Authn:              Authn{Method: "x509-svid", Serial: "6a01"},
		Action:             "shell.run",
		Resource:           "demo://hello",
		ArgsDigest:         "sha256:" + strings.Repeat("ab", 32),
		ActionDigest:       "sha256:" + strings.Repeat("cd", 32),
		Broker:             "spiffe://dev.ztlog.local/broker/demo",
		CapabilitiesDigest: "sha256:" + strings.Repeat("0c", 32),
		Attestation: &Attestation{
			Digest:   "sha256:" + strings.Repeat("9a", 32),
			Envelope: json.RawMessage(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"sha256:` + strings.Repeat("11", 32) + `","sig":"AAAA"}]}`),
			Chain:    []string{"MIIB"},
			Claims: map[string]string{"signer": "spiffe://dev.ztlog.local/agent/demo", "model.provider": "anthropic", "model.name": "claude-sonnet-4",
				"sandbox.profile": "strict", "sandbox.capabilities": "sha256:" + strings.Repeat("0c", 32), "code.digest": "sha256:" + strings.Repeat("c0", 32)},
		},
		Effect:  Allow,
		Reasons: []Reason{{Code: "policy.allow", Message: "allowed by the example policy"}},
		Policy:  PolicyRef{Hash: "sha256:" + strings.Repeat("01", 32), Engine: "opa", Revision: "r1"},
		Receipt: &ReceiptRef{ID: "rcpt-3", KeyID: "k1", Audience: "spiffe://dev.ztlog.local/broker/demo", Expires: "2026-11-21T10:08:03Z"},
	}},
	{"result.json", &Result{
		Time:             "2026-11-21T10:00:02.5Z",
		CorrelationID:    "c0ffee00-0000-4000-8000-000000000001",
		DecisionIndex:    41,
		DecisionLeafHash: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		ActionDigest:     "sha256:" + strings.Repeat("cd", 32),
		Broker:           "spiffe://dev.ztlog.local/broker/local",
		ReceiptID:        "rcpt-1",
		Outcome:          "ok",
		ExitStatus:       exitStatus(0),
		Statement: Attestation{
			Digest:   "sha256:" + strings.Repeat("99", 32),
			Envelope: json.RawMessage(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AAAA"}]}`),
			Chain:    []string{"MIIB"},
		},
	}},
	{"agent-register.json", &Agent{
		Time:          "2026-11-21T09:59:00Z",
		CorrelationID: "reg-1",
		Op:            AgentRegister,
		ID:            "spiffe://dev.ztlog.local/agent/demo",
		Owner:         "team-demo",
		Brokers:       []string{"spiffe://dev.ztlog.local/broker/local"},
		Labels:        map[string]string{"tier": "dev", "env": "local"},
		By:            "spiffe://dev.ztlog.local/admin",
	}},
	{"agent-revoke.json", &Agent{
		Time:          "2026-11-21T12:00:00Z",
		CorrelationID: "rev-1",
		Op:            AgentRevoke,
		ID:            "spiffe://dev.ztlog.local/agent/demo",
		By:            "spiffe://dev.ztlog.local/admin",
	}},
	{"policy.json", &Policy{
		Time:         "2026-11-21T09:58:00Z",
		Hash:         "sha256:" + strings.Repeat("01", 32),
		Engine:       "opa",
		Revision:     "r1",
		SourceDigest: "sha256:" + strings.Repeat("03", 32),
		LoadedBy:     "startup",
	}},
	// Added with agent aliases (the fields are optional: the vectors above
	// are unchanged, byte for byte).
	{"agent-register-aliases.json", &Agent{
		Time:          "2026-11-21T09:59:30Z",
		CorrelationID: "reg-2",
		Op:            AgentRegister,
		ID:            "spiffe://dev.ztlog.local/agent/demo",
		Owner:         "ztlog dev",
		Brokers:       []string{"spiffe://dev.ztlog.local/broker/demo"},
		Aliases:       []string{"hello-world-agent", "demo@team.example"},
		By:            "spiffe://dev.ztlog.local/admin",
	}},
	{"decision-alias.json", &Decision{
		Time:          "2026-11-21T10:00:04Z",
		CorrelationID: "c0ffee00-0000-4000-8000-000000000004",
		Actor:         "spiffe://dev.ztlog.local/agent/demo",
		ActorAlias:    "hello-world-agent",
		Authn:         Authn{Method: "jwt-svid", Serial: "jti-4", Expires: "2026-11-21T11:00:00Z"},
		Action:        "demo.echo",
		Resource:      "demo://hello",
		ActionDigest:  "sha256:" + strings.Repeat("4d", 32),
		Broker:        "spiffe://dev.ztlog.local/broker/demo",
		Effect:        Allow,
		Reasons:       []Reason{{Code: "policy.allow", Message: "allowed by the example policy"}},
		Policy:        PolicyRef{Hash: "sha256:" + strings.Repeat("01", 32), Engine: "opa"},
		Receipt:       &ReceiptRef{ID: "rcpt-4", KeyID: "k1", Audience: "spiffe://dev.ztlog.local/broker/demo", Expires: "2026-11-21T10:05:04Z"},
	}},
}

// vector is one line of testdata/entries/vectors.json.
type vector struct {
	File     string `json:"file"`
	Kind     Kind   `json:"kind"`
	LeafHash string `json:"leaf_hash"` // RFC 6962 leaf hash, standard base64
}

func leafHash(b []byte) string {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestGoldenEntries(t *testing.T) {
	var vectors []vector
	for _, g := range goldenEntries {
		got, err := Marshal(g.entry)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", g.file, err)
		}
		path := filepath.Join(vectorDir, g.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./contract -update to create the vectors)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Marshal produced\n%s\nthe vector holds\n%s", g.file, got, want)
		}
		parsed, err := Parse(want)
		if err != nil {
			t.Fatalf("%s: Parse: %v", g.file, err)
		}
		again, err := Marshal(parsed)
		if err != nil || !bytes.Equal(again, want) {
			t.Errorf("%s: Parse then Marshal does not reproduce the vector: %v\n%s", g.file, err, again)
		}
		if parsed.EntryKind() != g.entry.EntryKind() {
			t.Errorf("%s: parsed kind %s, want %s", g.file, parsed.EntryKind(), g.entry.EntryKind())
		}
		vectors = append(vectors, vector{File: g.file, Kind: g.entry.EntryKind(), LeafHash: leafHash(want)})
	}
	manifest := filepath.Join(vectorDir, "vectors.json")
	if *update {
		b, _ := json.MarshalIndent(vectors, "", "  ")
		os.WriteFile(manifest, append(b, '\n'), 0o644)
	}
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var recorded []vector
	if err := json.Unmarshal(raw, &recorded); err != nil {
		t.Fatal(err)
	}
	if len(recorded) != len(vectors) {
		t.Fatalf("vectors.json lists %d vectors, the test has %d", len(recorded), len(vectors))
	}
	for i := range vectors {
		if recorded[i] != vectors[i] {
			t.Errorf("vectors.json[%d] = %+v, computed %+v", i, recorded[i], vectors[i])
		}
	}
}

// invalidVectors are files in testdata/entries/invalid with the error each
// must produce.
var invalidVectors = []struct {
	file    string
	wantErr error
	wantMsg string
}{
	{"not-canonical-spacing.json", ErrNotCanonical, ""},
	{"not-canonical-order.json", ErrNotCanonical, ""},
	{"version-2.json", ErrUnsupportedVersion, "v=2"},
	{"unknown-kind.json", ErrMalformed, `unknown kind "audit"`},
	{"unknown-field.json", ErrMalformed, `unknown field "extra"`},
	{"deny-without-reason.json", ErrMalformed, `"reasons": a deny needs at least one reason`},
	{"bad-digest.json", ErrMalformed, `"action_digest"`},
	{"bad-actor.json", ErrMalformed, `"actor": not a SPIFFE ID`},
	{"bad-time.json", ErrMalformed, `"time": not in UTC`},
	{"duplicate-key.json", ErrMalformed, "duplicate member name"},
	{"receipt-on-deny.json", ErrMalformed, `"receipt": only an allow carries a receipt`},
	{"wrong-type.json", ErrMalformed, "cannot unmarshal"},
	{"alias-spiffe-id.json", ErrMalformed, `"aliases[0]": "spiffe://dev.ztlog.local/agent/other" is not an alias`},
	{"alias-twice.json", ErrMalformed, `"aliases[1]": "hello-world-agent" is listed twice`},
	{"actor-alias-with-claimed-actor.json", ErrMalformed, `"actor_alias": set with claimed_actor`},
	{"actor-alias-not-an-alias.json", ErrMalformed, `"actor_alias": "hello world" is not an alias`},
}

func TestInvalidEntries(t *testing.T) {
	for _, v := range invalidVectors {
		t.Run(v.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(vectorDir, "invalid", v.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(bytes.TrimRight(raw, "\n"))
			if !errors.Is(err, v.wantErr) {
				t.Fatalf("Parse = %v, want %v", err, v.wantErr)
			}
			if v.wantMsg != "" && !strings.Contains(err.Error(), v.wantMsg) {
				t.Fatalf("error %q does not say %q", err, v.wantMsg)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join(vectorDir, "decision-deny.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(valid, []byte("<")) {
		t.Fatal("decision-deny.json should hold a '<' for the escaping case")
	}
	for name, b := range map[string][]byte{
		"empty":        {},
		"null":         []byte("null"),
		"array":        []byte("[]"),
		"bad utf-8":    append(valid[:len(valid)-1:len(valid)-1], []byte(`,"x":"\xff"}`)...),
		"trailing":     append(append([]byte{}, valid...), ' '),
		"two objects":  append(append([]byte{}, valid...), valid...),
		"too large":    bytes.Repeat([]byte{' '}, MaxEntrySize+1),
		"leading ws":   append([]byte{' '}, valid...),
		"html escaped": bytes.Replace(valid, []byte("<"), []byte(`\u003c`), 1),
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: Parse accepted %q", name, b)
		}
	}
}

func TestMarshalRefusesOversize(t *testing.T) {
	d := *goldenEntries[0].entry.(*Decision)
	d.Attestation = &Attestation{Digest: "sha256:" + strings.Repeat("00", 32), Envelope: json.RawMessage(`{"p":"` + strings.Repeat("A", MaxEntrySize) + `"}`)}
	_, err := Marshal(&d)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "the limit is 65535") {
		t.Fatalf("Marshal of an oversize decision = %v, want ErrTooLarge", err)
	}
}

// attested is an attestation with a valid digest and the given parts.
func attested(env string, chain []string, claims map[string]string) *Attestation {
	return &Attestation{Digest: "sha256:" + strings.Repeat("ab", 32), Envelope: json.RawMessage(env), Chain: chain, Claims: claims}
}

func TestValidationNamesTheField(t *testing.T) {
	base := func() *Decision { d := *goldenEntries[0].entry.(*Decision); return &d }
	cases := []struct {
		field string
		mod   func(*Decision)
	}{
		{"time", func(d *Decision) { d.Time = "yesterday" }},
		{"correlation_id", func(d *Decision) { d.CorrelationID = "" }},
		{"actor", func(d *Decision) { d.Actor = "agent" }},
		{"authn.method", func(d *Decision) { d.Authn.Method = "password" }},
		{"action", func(d *Decision) { d.Action = "a\nb" }},
		{"args_digest", func(d *Decision) { d.ArgsDigest = "sha256:XYZ" }},
		{"broker", func(d *Decision) { d.Broker = "http://broker" }},
		{"decision", func(d *Decision) { d.Effect = "maybe" }},
		{"policy.hash", func(d *Decision) { d.Policy.Hash = "" }},
		{"receipt.audience", func(d *Decision) { d.Receipt.Audience = "" }},
		{"user.subject", func(d *Decision) { d.User.Subject = "" }},
		{"policy.engine", func(d *Decision) { d.Policy.Engine = "" }},
		{"attestation.digest", func(d *Decision) { d.Attestation = &Attestation{Digest: "sha256:AB"} }},
		{"attestation.envelope", func(d *Decision) { d.Attestation = attested(`{"payload":`, nil, nil) }},
		{"attestation.envelope", func(d *Decision) { d.Attestation = attested(`{"a":1,"a":2}`, nil, nil) }},
		{"attestation.chain[1]", func(d *Decision) { d.Attestation = attested(`{}`, []string{"AAAA", "AA=A"}, nil) }},
		{"attestation.chain[0]", func(d *Decision) { d.Attestation = attested(`{}`, []string{""}, nil) }},
		{"attestation.claims key", func(d *Decision) { d.Attestation = attested(`{}`, nil, map[string]string{"": "x"}) }},
		{"attestation.claims[model]", func(d *Decision) { d.Attestation = attested(`{}`, nil, map[string]string{"model": "a\x00b"}) }},
	}
	for _, c := range cases {
		d := base()
		r := *d.Receipt
		d.Receipt = &r
		u := *d.User
		d.User = &u
		c.mod(d)
		_, err := Marshal(d)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: Marshal = %v, want a FieldError naming %q", c.field, err, c.field)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, g := range goldenEntries {
		b, err := Marshal(g.entry)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"kind":"decision"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to exactly the same bytes.
		again, err := Marshal(e)
		if err != nil {
			t.Fatalf("parsed entry does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Parse/Marshal not identity:\n%q\n%q", b, again)
		}
	})
}

func TestResultLeafHashIsA32ByteHash(t *testing.T) {
	var base *Result
	for _, g := range goldenEntries {
		if r, ok := g.entry.(*Result); ok {
			base = r
			break
		}
	}
	if base == nil {
		t.Fatal("no result among the golden entries")
	}
	if _, err := Marshal(base); err != nil {
		t.Fatalf("golden result: %v", err)
	}
	for _, h := range []string{"", "AAAA", base64.StdEncoding.EncodeToString(make([]byte, 31)), base64.StdEncoding.EncodeToString(make([]byte, 33)), strings.Repeat("A", 42) + "=!"} {
		r := *base
		r.DecisionLeafHash = h
		_, err := Marshal(&r)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "decision_leaf_hash" {
			t.Errorf("decision_leaf_hash %q: Marshal = %v, want a FieldError naming it", h, err)
		}
	}
}

// The allocation-free checks accept exactly what the decoding ones they
// replaced accept: isBase64 what base64.StdEncoding.DecodeString decodes
// (and to as many bytes), checkDigest what sha256: plus 64 lowercase
// characters that hex.DecodeString reads.
func FuzzFieldChecks(f *testing.F) {
	for _, s := range []string{"", "AAAA", "AA==", "AA=A", "A\nAAA", "sha256:" + strings.Repeat("0f", 32), "sha256:" + strings.Repeat("0F", 32), strings.Repeat("QUJD", 700)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := base64.StdEncoding.DecodeString(s)
		n, ok := isBase64(s)
		if ok != (err == nil) || (ok && n != len(dec)) {
			t.Fatalf("isBase64(%q) = %d, %v; DecodeString: %d bytes, %v", s, n, ok, len(dec), err)
		}
		hexPart, prefixed := strings.CutPrefix(s, "sha256:")
		_, herr := hex.DecodeString(hexPart)
		want := prefixed && len(hexPart) == 64 && strings.ToLower(hexPart) == hexPart && herr == nil
		if got := checkDigest("f", s, false) == nil; s != "" && got != want {
			t.Fatalf("checkDigest(%q) accepts: %v, want %v", s, got, want)
		}
	})
}
