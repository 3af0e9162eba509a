package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
)

func schema(t testing.TB, name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("file:///openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("file:///openapi.json#/components/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schemaFields returns every field the schema rejects body for (one per
// leaf error), in the decoder's dotted form; none if it accepts it.
func schemaFields(t *testing.T, s *jsonschema.Schema, body string) []string {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		t.Fatalf("test body %s is not JSON: %v", body, err)
	}
	err = s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	var out []string
	var walk func(*jsonschema.ValidationError)
	walk = func(ve *jsonschema.ValidationError) {
		if _, ok := ve.ErrorKind.(*kind.PropertyNames); ok {
			// A bad key is reported at its object, by both. (The library's
			// InstanceLocation for propertyNames is unreliable; the schema
			// location names the property: .../properties/<name>/propertyNames.)
			parts := strings.Split(ve.SchemaURL, "/")
			out = append(out, parts[len(parts)-2])
			return
		}
		if len(ve.Causes) > 0 {
			for _, c := range ve.Causes {
				walk(c)
			}
			return
		}
		loc := append([]string(nil), ve.InstanceLocation...)
		switch k := ve.ErrorKind.(type) {
		case *kind.Required:
			loc = append(loc, k.Missing...)
		case *kind.AdditionalProperties:
			loc = append(loc, k.Properties...)
		}
		var b strings.Builder
		for i, p := range loc {
			if _, err := fmt.Sscanf(p, "%d", new(int)); err == nil && i > 0 {
				b.WriteString("[" + p + "]")
				continue
			}
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
		out = append(out, b.String())
	}
	walk(ve)
	return out
}

var sig = `{"keyid":"k","sig":"AAAA"}`

var actionCases = []string{
	`{"action":"demo.echo","resource":"demo://hello"}`,
	`{"actor":"spiffe://dev.ztlog.local/agent/demo","action":"demo.echo","resource":"r","args_digest":"sha256:` + strings.Repeat("ab", 32) + `","broker":"spiffe://dev.ztlog.local/broker/demo","correlation_id":"abc-1"}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]}}`,
	`{"resource":"r"}`,
	`{"action":"demo.echo"}`,
	`{"action":"","resource":"r"}`,
	`{"action":"demo echo","resource":"r"}`,
	`{"action":"demo.echo","resource":""}`,
	`{"action":"demo.echo","resource":"a\u0001b"}`,
	`{"action":"demo.echo","resource":"a\u0085b"}`,
	`{"action":"demo.echo","resource":"a\u202eb"}`,
	`{"action":"demo.echo","resource":"a\u2029b"}`,
	`{"action":"demo.echo","resource":"` + strings.Repeat("é", 513) + `"}`,
	`{"action":"demo.echo","resource":"` + strings.Repeat("é", 512) + `"}`,
	`{"action":"` + strings.Repeat("a", 257) + `","resource":"r"}`,
	`{"action":5,"resource":"r"}`,
	`{"action":"demo.echo","resource":["r"]}`,
	`{"action":"demo.echo","resource":"r","extra":1}`,
	`{"Action":"demo.echo","resource":"r"}`,
	`{"action":"demo.echo","resource":"r","actor":"hello-world-agent"}`,
	`{"action":"demo.echo","resource":"r","actor":""}`,
	`{"action":"demo.echo","resource":"r","args_digest":"sha256:ABC"}`,
	`{"action":"demo.echo","resource":"r","args_digest":null}`,
	`{"action":"demo.echo","resource":"r","broker":"https://broker"}`,
	`{"action":"demo.echo","resource":"r","correlation_id":"has space"}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"t","payload":"e30=","signatures":[]}}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"t","payload":"e30=","signatures":[{"sig":"!!"}]}}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"t","payload":"e30=","signatures":[{"keyid":"k"}]}}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"t","payload":"e30=","signatures":[{"sig":"AAAA","x":1}]}}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payload":"e30=","signatures":[` + sig + `]}}`,
	`{"action":"demo.echo","resource":"r","attestation":"e30="}`,
	`[]`,
	`"x"`,
	`{"action":"demo.echo","resource":"r","args":{"to":"bob@example.com","n":[1,2]}}`,
	`{"action":"demo.echo","resource":"r","args":"x"}`,
	`{"action":"demo.echo","resource":"r","args":[1]}`,
	`{"action":"demo.echo","resource":"r","capabilities":` + manifest + `}`,
	`{"action":"demo.echo","resource":"r","capabilities":"strict"}`,
	`{"action":"demo.echo","resource":"r","capabilities":` + strings.Replace(manifest, `"commands":["echo"]`, `"outputs":[]`, 1) + `}`,
	`{"action":"demo.echo","resource":"r","capabilities":` + strings.Replace(manifest, `{"mode":"blocked"}`, `{"mode":"allow","ports":[0]}`, 1) + `}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]},"attestation_chain":["MIIB"]}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]},"attestation_chain":["!!"]}`,
	`{"action":"demo.echo","resource":"r","attestation":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]},"attestation_chain":["MIIB","MIIB","MIIB","MIIB","MIIB"]}`,
}

const manifest = `{"v":1,"profile":"strict","filesystem":{"read":["/usr"],"read_write":["/tmp/w"]},"network":{"mode":"blocked"},"workdir":"/tmp/w","limits":{"timeout_seconds":30,"memory_bytes":1048576,"processes":8},"commands":["echo"]}`

var resultCases = []string{
	`{"statement":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]},"chain":["MIIB"]}`,
	`{"statement":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]}}`,
	`{"chain":["MIIB"]}`,
	`{"statement":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]},"chain":[]}`,
	`{"statement":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[` + sig + `]},"chain":["MIIB"],"extra":1}`,
	`{"statement":"e30=","chain":["MIIB"]}`,
}

var agentCases = []string{
	`{"op":"register","id":"spiffe://td/agent/a"}`,
	`{"op":"register","id":"spiffe://td/agent/a","owner":"team","brokers":["spiffe://td/broker/b"],"labels":{"tier":"dev"}}`,
	`{"op":"revoke","id":"spiffe://td/agent/a"}`,
	`{"op":"delete","id":"spiffe://td/agent/a"}`,
	`{"id":"spiffe://td/agent/a"}`,
	`{"op":"register"}`,
	`{"op":"register","id":"agent-a"}`,
	`{"op":"register","id":"spiffe://td/agent/a","brokers":["x"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","brokers":"spiffe://td/broker/b"}`,
	`{"op":"register","id":"spiffe://td/agent/a","labels":{"bad key":"v"}}`,
	`{"op":"register","id":"spiffe://td/agent/a","labels":{"k":1}}`,
	`{"op":"register","id":"spiffe://td/agent/a","owner":"a\nb"}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["hello-world-agent","demo@team.example","a.b:c_d-1"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":[]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["spiffe://td/agent/b"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["ok","hello world"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":[""]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["-leading-dash"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["` + strings.Repeat("a", 129) + `"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["` + strings.Repeat("a", 128) + `"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["x","x"]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":"hello-world-agent"}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":[7]}`,
	`{"op":"register","id":"spiffe://td/agent/a","aliases":["a0","a1","a2","a3","a4","a5","a6","a7","a8","a9","b0","b1","b2","b3","b4","b5","b6"]}`,
	// issue 18 finding 5: C1 controls, bidi overrides/isolates, separators.
	"{\"op\":\"register\",\"id\":\"spiffe://td/agent/a\",\"owner\":\"a\u0085b\"}",
	"{\"op\":\"register\",\"id\":\"spiffe://td/agent/a\",\"owner\":\"a\u202eb\"}",
	"{\"op\":\"register\",\"id\":\"spiffe://td/agent/a\",\"labels\":{\"k\":\"\u2066v\u2069\"}}",
	"{\"op\":\"register\",\"id\":\"spiffe://td/agent/a\",\"owner\":\"line\u2028two\"}",
	"{\"op\":\"register\",\"id\":\"spiffe://td/agent/a\",\"owner\":\"ok \u00e9 \u200d\"}",
}

var legacyCases = []string{
	`{"actor":"hello-world-agent","action":"aws.ec2.terminate_instances","resource":"i-demo"}`,
	`{"action":"demo.echo","resource":"r"}`,
	`{"actor":"a","action":"demo.echo","resource":"r","args":{}}`,
	`{"actor":"a","action":"demo.echo","resource":7}`,
	`{"actor":"","action":"demo.echo","resource":"r"}`,
	`{"actor":"a\u0001b","action":"demo.echo","resource":"r"}`,
}

// TestSchemaAgreesWithDecoder: every body the OpenAPI schema rejects, the
// decoder rejects, naming the same field; every body it accepts, the
// decoder accepts.
func TestSchemaAgreesWithDecoder(t *testing.T) {
	for name, tc := range map[string]struct {
		cases  []string
		decode func([]byte) *httperr.Error
	}{
		"ActionRequest": {actionCases, func(b []byte) *httperr.Error { _, e := DecodeActionRequest(b); return e }},
		"AgentRequest":  {agentCases, func(b []byte) *httperr.Error { _, e := DecodeAgentRequest(b); return e }},
		"ResultRequest": {resultCases, func(b []byte) *httperr.Error { _, e := DecodeResultRequest(b); return e }},
		"LegacyActionRequest": {legacyCases, func(b []byte) *httperr.Error {
			_, e := DecodeLegacyActionRequest(b)
			return e
		}},
	} {
		s := schema(t, name)
		accepted, rejected := 0, 0
		for _, body := range tc.cases {
			fields := schemaFields(t, s, body)
			schemaRejects := len(fields) > 0
			e := tc.decode([]byte(body))
			switch {
			case schemaRejects && e == nil:
				t.Errorf("%s: schema rejects (at %q) but the decoder accepts %s", name, fields, body)
			case !schemaRejects && e != nil:
				t.Errorf("%s: schema accepts but the decoder rejects %s: %v", name, body, e)
			case schemaRejects && !slices.Contains(fields, e.Field):
				t.Errorf("%s: schema rejects at %q, decoder at %q (%v) for %s", name, fields, e.Field, e, body)
			case schemaRejects:
				rejected++
			default:
				accepted++
			}
		}
		if accepted == 0 || rejected == 0 {
			t.Errorf("%s: %d accepted, %d rejected: the table does not exercise both", name, accepted, rejected)
		}
	}
}

// What JSON Schema cannot express, the decoder still refuses.
func TestDecoderRefusesWhatSchemaCannotSee(t *testing.T) {
	for body, code := range map[string]string{
		`{"action":"demo.echo","action":"x","resource":"r"}`: CodeDuplicateField,
		`{"action":"demo.echo","resource":"r"} {}`:           CodeMalformedJSON,
		`{"action":"demo.echo","resource":"r"`:               CodeMalformedJSON,
		"{\"action\":\"demo.echo\",\"resource\":\"\xff\"}":   CodeMalformedJSON,
	} {
		_, e := DecodeActionRequest([]byte(body))
		if e == nil || e.Code != code {
			t.Errorf("%q: %v, want %s", body, e, code)
		}
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		ct     string
		body   string
		status int
		code   string
	}{
		{"application/json", `{}`, 0, ""},
		{"application/json; charset=utf-8", `{}`, 0, ""},
		{"", `{}`, 0, ""},
		{"text/plain", `{}`, 415, CodeUnsupportedMedia},
		{"application/json", strings.Repeat(" ", MaxBody+1), 413, CodeTooLarge},
		{"application/json", "{\"a\":\"\xc3\x28\"}", 400, CodeBadUTF8},
	} {
		r := httptest.NewRequest("POST", "/v1/actions", strings.NewReader(tc.body))
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		_, e, status := ReadBody(httptest.NewRecorder(), r)
		if status != tc.status || (e == nil) != (tc.code == "") || (e != nil && e.Code != tc.code) {
			t.Errorf("%q %d bytes: status %d, %v; want %d %s", tc.ct, len(tc.body), status, e, tc.status, tc.code)
		}
	}
}

func TestOpenAPIDocument(t *testing.T) {
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	for _, p := range []string{"/v1/actions", "/v1/actions/possible", "/v1/results", "/actions", "/v1/agents", "/v1/agents/{trust_domain}/{path}", "/v1/receipts/jwks.json", "/v1/openapi.json"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("OpenAPI document lacks %s", p)
		}
	}
	for _, name := range []string{"ActionResponse", "LegacyActionResponse", "AgentResponse", "ResultResponse", "PossibleResponse", "Error"} {
		schema(t, name)
	}
}

func FuzzDecodeActionRequest(f *testing.F) {
	for _, c := range actionCases {
		f.Add([]byte(c))
	}
	s := schema(f, "ActionRequest")
	f.Fuzz(func(t *testing.T, body []byte) {
		_, e := DecodeActionRequest(body)
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		// Whatever the decoder accepts, the schema accepts.
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decoder accepted non-JSON %q", body)
		}
		if err := s.Validate(inst); err != nil {
			t.Fatalf("decoder accepted %q, schema rejects: %v", body, err)
		}
	})
}

func TestArgsDigest(t *testing.T) {
	req, e := DecodeActionRequest([]byte(`{"action":"a.b","resource":"r","args":{"b":1,"a":"x"}}`))
	if e != nil {
		t.Fatal(e)
	}
	want := entry.Digest([]byte(`{"a":"x","b":1}`))
	if req.ArgsDigest != want {
		t.Fatalf("args digest %s, want the JCS digest %s", req.ArgsDigest, want)
	}
	if _, e := DecodeActionRequest([]byte(`{"action":"a.b","resource":"r","args":{"a":"x"},"args_digest":"sha256:` + strings.Repeat("0", 64) + `"}`)); e == nil || e.Field != "args_digest" {
		t.Fatalf("mismatched args digest: %v", e)
	}
}

// TestCapabilitiesDigest: the decoder computes the manifest's digest, and
// chains without attestations are refused.
func TestCapabilitiesDigest(t *testing.T) {
	req, e := DecodeActionRequest([]byte(`{"action":"demo.echo","resource":"r","capabilities":` + manifest + `}`))
	if e != nil {
		t.Fatal(e)
	}
	m, err := capability.Parse([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Digest()
	if req.CapabilitiesDigest != want {
		t.Fatalf("digest %s, want %s", req.CapabilitiesDigest, want)
	}
	if _, e := DecodeActionRequest([]byte(`{"action":"demo.echo","resource":"r","attestation_chain":["MIIB"]}`)); e == nil || e.Field != "attestation_chain" {
		t.Fatalf("chain without attestation: %v", e)
	}
	if _, e := DecodeActionRequest([]byte(`{"action":"demo.echo","resource":"r","capabilities":` + strings.Replace(manifest, `{"mode":"blocked"}`, `{"mode":"blocked","domains":["a.example"]}`, 1) + `}`)); e == nil || e.Field != "capabilities.network" {
		t.Fatalf("blocked with domains: %v", e)
	}
}

func FuzzDecodeResultRequest(f *testing.F) {
	for _, c := range resultCases {
		f.Add([]byte(c))
	}
	s := schema(f, "ResultRequest")
	f.Fuzz(func(t *testing.T, body []byte) {
		_, e := DecodeResultRequest(body)
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decoder accepted non-JSON %q", body)
		}
		if err := s.Validate(inst); err != nil {
			t.Fatalf("decoder accepted %q, schema rejects: %v", body, err)
		}
	})
}

// TestAgentAliasErrorsNameTheField: a bad alias is refused naming the
// element, a repeated one naming the list, an alias on a revoke naming op.
func TestAgentAliasErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ body, field, says string }{
		{`{"op":"register","id":"spiffe://td/agent/a","aliases":["ok","spiffe://td/agent/b"]}`, "aliases[1]", "no /"},
		{`{"op":"register","id":"spiffe://td/agent/a","aliases":["x","y","x"]}`, "aliases", `"x" is listed twice (aliases[0] and aliases[2])`},
		{`{"op":"revoke","id":"spiffe://td/agent/a","aliases":["x"]}`, "op", "a revoke carries only the id"},
	} {
		_, e := DecodeAgentRequest([]byte(tc.body))
		if e == nil {
			t.Errorf("%s: accepted", tc.body)
			continue
		}
		if e.Field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.body, e.Field, tc.field)
		}
		if !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s: message %q does not say %q", tc.body, e.Message, tc.says)
		}
	}
	req, e := DecodeAgentRequest([]byte(`{"op":"register","id":"spiffe://td/agent/a","aliases":["hello-world-agent"]}`))
	if e != nil {
		t.Fatal(e)
	}
	if len(req.Aliases) != 1 || req.Aliases[0] != "hello-world-agent" {
		t.Errorf("aliases %q, want [hello-world-agent]", req.Aliases)
	}
}

// TestLegacyActorIsOptional: the JS SDK's body without an actor means the
// caller.
func TestLegacyActorIsOptional(t *testing.T) {
	req, e := DecodeLegacyActionRequest([]byte(`{"action":"demo.echo","resource":"r"}`))
	if e != nil {
		t.Fatal(e)
	}
	if req.Actor != "" {
		t.Errorf("actor %q, want empty", req.Actor)
	}
}

var possibleCases = []string{
	`{"actions":["mcp.tool.everything.echo","mcp.tool.everything.add"]}`,
	`{"actions":[]}`,
	`{}`,
	`{"actions":["a b"]}`,
	`{"actions":["ok",7]}`,
	`{"actions":["ok"],"actor":"spiffe://x/y"}`,
	`{"actions":null}`,
}

// TestDecodePossibleRequest: each refusal names the field.
func TestDecodePossibleRequest(t *testing.T) {
	req, e := DecodePossibleRequest([]byte(possibleCases[0]))
	if e != nil {
		t.Fatal(e)
	}
	if len(req.Actions) != 2 {
		t.Fatalf("%d actions, want 2", len(req.Actions))
	}
	many := `{"actions":[` + strings.Repeat(`"a",`, MaxPossibleActions) + `"a"]}`
	for _, c := range []struct{ body, code, field string }{
		{possibleCases[1], CodeInvalidField, "actions"},
		{possibleCases[2], CodeMissingField, "actions"},
		{possibleCases[3], CodeInvalidField, "actions[0]"},
		{possibleCases[4], CodeWrongType, "actions[1]"},
		{possibleCases[5], CodeUnknownField, "actor"},
		{possibleCases[6], CodeMissingField, "actions"},
		{many, CodeInvalidField, "actions"},
	} {
		_, e := DecodePossibleRequest([]byte(c.body))
		if e == nil {
			t.Errorf("%.60s: accepted", c.body)
			continue
		}
		if e.Code != c.code {
			t.Errorf("%.60s: code %s, want %s", c.body, e.Code, c.code)
		}
		if e.Field != c.field {
			t.Errorf("%.60s: field %q, want %q", c.body, e.Field, c.field)
		}
	}
}

func FuzzDecodePossibleRequest(f *testing.F) {
	for _, c := range possibleCases {
		f.Add([]byte(c))
	}
	s := schema(f, "PossibleRequest")
	f.Fuzz(func(t *testing.T, body []byte) {
		_, e := DecodePossibleRequest(body)
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decoder accepted non-JSON %q", body)
		}
		if err := s.Validate(inst); err != nil {
			t.Fatalf("decoder accepted %q, schema rejects: %v", body, err)
		}
	})
}
