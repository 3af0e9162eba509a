package attest

import (
	"bytes"
	stdjson "encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// attest.md and
// schema/broker-result.v1.schema.json mark these members required (and times
// as RFC 3339): ParseBrokerResult refuses a predicate that lacks them, as
// the schema does.
func TestParserRefusesWhatSchemaRefuses(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(BrokerResultSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("broker-result.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("broker-result.json")
	if err != nil {
		t.Fatal(err)
	}
	br, _ := stdjson.Marshal(vectorBrokerResult())
	for _, tc := range []struct{ name, from, to string }{
		{"no sandbox.applied", `,"applied":["fs.read /usr","fs.read_write /tmp/work","net.blocked namespace","limit.timeout 30s","command /usr/bin/cat"]`, ``},
		{"no decision.index", `"index":41,`, ``},
		{"no exit.status", `"exit":{"status":1}`, `"exit":{"timedOut":true}`},
		{"no outputs.stderr.size", `,"size":36`, ``},
		{"comma fraction in time", `"startedAt":"2026-11-21T10:00:02.25Z"`, `"startedAt":"2026-11-21T10:00:02,25Z"`},
	} {
		d := bytes.Replace(br, []byte(tc.from), []byte(tc.to), 1)
		if bytes.Equal(d, br) {
			t.Fatalf("%s: edit did not apply to %s", tc.name, br)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d))
		if err != nil {
			t.Fatal(err)
		}
		se := schema.Validate(inst)
		_, pe := ParseBrokerResult(d)
		if se == nil || pe == nil {
			t.Errorf("%s: schema error %v, parser error %v; both must refuse", tc.name, se, pe)
		}
	}
}
