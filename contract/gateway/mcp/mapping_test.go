package mcp_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/contract/gateway/mcp"
)

const vectors = "../../../testdata/mcp"

func TestManifestDigestVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectors, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Vectors []struct {
			Name   string   `json:"name"`
			Pages  []string `json:"pages"`
			Digest string   `json:"digest"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) < 3 {
		t.Fatalf("only %d vectors", len(v.Vectors))
	}
	for _, tc := range v.Vectors {
		var pages [][]byte
		for _, p := range tc.Pages {
			b, err := os.ReadFile(filepath.Join(vectors, p))
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, b)
		}
		got, err := mcp.ManifestDigest(pages...)
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		if got != tc.Digest {
			t.Errorf("%s: digest %s, want %s", tc.Name, got, tc.Digest)
		}
	}
}

func TestManifestDigestSeesEveryChange(t *testing.T) {
	base := `{"tools":[{"name":"echo","description":"echoes","inputSchema":{"type":"object"}}]}`
	d0, err := mcp.ManifestDigest([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for name, changed := range map[string]string{
		"description": `{"tools":[{"name":"echo","description":"echoes and mails","inputSchema":{"type":"object"}}]}`,
		"schema":      `{"tools":[{"name":"echo","description":"echoes","inputSchema":{"type":"object","properties":{"to":{"type":"string"}}}}]}`,
		"annotation":  `{"tools":[{"name":"echo","description":"echoes","inputSchema":{"type":"object"},"annotations":{"destructiveHint":true}}]}`,
		"tool added":  `{"tools":[{"name":"echo","description":"echoes","inputSchema":{"type":"object"}},{"name":"rm","inputSchema":{"type":"object"}}]}`,
		"tool gone":   `{"tools":[]}`,
	} {
		d, err := mcp.ManifestDigest([]byte(changed))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d == d0 {
			t.Errorf("a changed %s leaves the digest unchanged", name)
		}
	}
	// Formatting and member order are not changes.
	same, _ := mcp.ManifestDigest([]byte("{ \"tools\" : [ {\"inputSchema\":{\"type\":\"object\"}, \"description\":\"echoes\",\"name\":\"echo\"} ], \"nextCursor\": \"\" }"))
	if same != d0 {
		t.Errorf("reformatting changed the digest: %s, want %s", same, d0)
	}
	if _, err := mcp.ManifestDigest([]byte(`{"tools":{}}`)); err == nil {
		t.Error("a tools/list result whose tools is not an array has a digest")
	}
}

func TestAction(t *testing.T) {
	if got := mcp.Action("everything", "echo"); got != "mcp.tool.everything.echo" {
		t.Fatalf("Action = %q", got)
	}
}

func TestServerName(t *testing.T) {
	for in, want := range map[string]string{
		"mcp-servers/everything":   "everything",
		"secure-filesystem-server": "secure-filesystem-server",
		"My Server v1.2":           "my-server-v1-2",
		"":                         "mcp",
		"///":                      "mcp",
		"a/b/Ünïcode":              "n-code",
	} {
		if got := mcp.ServerName(in); got != want {
			t.Errorf("ServerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMappingExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectors, "mapping.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mcp.ParseMapping(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Server != "filesystem" {
		t.Fatalf("server %q", m.Server)
	}
	if got := m.Tools["move_file"].Resource; got != "/destination" {
		t.Fatalf("move_file resource pointer %q", got)
	}
	if !m.Exposed("mcp.tool.filesystem.read_text_file") {
		t.Error("read_text_file is hidden; read_* exposes it")
	}
	if m.Exposed("mcp.tool.filesystem.move_file") {
		t.Error("move_file is shown; no pattern exposes it")
	}
}

func TestParseMappingRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[]`, "want {"},
		{`{"server":"a.b"}`, `server "a.b"`},
		{`{"server":""}`, ""},
		{`{"tools":{"echo":{"resource":"path"}}}`, "tools.echo.resource"},
		{`{"tools":{"echo":{"resource":"/a~2"}}}`, "~0 and ~1"},
		{`{"tools":{"echo":{"pointer":"/a"}}}`, `unknown field "pointer"`},
		{`{"tools":{"bad name":{}}}`, `"bad name"`},
		{`{"expose":["echo"]}`, "expose[0]"},
		{`{"expose":["mcp.tool.?"]}`, "only * is a wildcard"},
		{`{"server":"a","server":"b"}`, `duplicate member "server"`},
		{`{"server":"a"} {}`, "trailing data"},
		{`{"server":`, "not JSON"},
		{`{"extra":1}`, `unknown field "extra"`},
		{`{"filter_tools":"policy"}`, ""},
		{`{"filter_tools":"Policy"}`, `filter_tools: "Policy"`},
	} {
		_, err := mcp.ParseMapping([]byte(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.in, err, tc.want)
		}
	}
}

func TestResource(t *testing.T) {
	m, err := mcp.ParseMapping([]byte(`{"tools":{"w":{"resource":"/path"},"n":{"resource":"/opts/0/id"},"e":{"resource":"/a~1b/c~0d"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tool, args, want, err string
	}{
		{"w", `{"path":"/tmp/x","content":"y"}`, "/tmp/x", ""},
		{"other", `{"path":"/tmp/x"}`, "srv", ""},
		{"n", `{"opts":[{"id":12345678901234567890}]}`, "12345678901234567890", ""},
		{"n", `{"opts":[{"id":true}]}`, "true", ""},
		{"e", `{"a/b":{"c~d":"escaped"}}`, "escaped", ""},
		{"w", `{}`, "", "is missing"},
		{"w", `{"path":""}`, "", "empty string"},
		{"w", `{"path":null}`, "", "is null"},
		{"w", `{"path":{"x":1}}`, "", "object or array"},
		{"n", `{"opts":[]}`, "", "no such array element"},
		{"n", `{"opts":{"0":{"id":"by name"}}}`, "by name", ""},
		{"n", `{"opts":"s"}`, "", "a scalar has no members"},
		{"w", `not json`, "", "not JSON"},
	} {
		got, err := m.Resource("srv", tc.tool, json.RawMessage(tc.args))
		if tc.err != "" {
			var re *mcp.ResourceError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want a ResourceError saying %q", tc.tool, tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %q, %v; want %q", tc.tool, tc.args, got, err, tc.want)
		}
	}
	var none *mcp.Mapping
	if got, err := none.Resource("srv", "w", json.RawMessage(`{}`)); got != "srv" || err != nil {
		t.Errorf("no mapping: %q, %v; want the server name", got, err)
	}
}

func TestExposed(t *testing.T) {
	m := &mcp.Mapping{Expose: []string{"mcp.tool.*.echo", "mcp.tool.fs.read_*", "mcp.tool.x.*.y*z"}}
	for action, want := range map[string]bool{
		"mcp.tool.everything.echo":   true,
		"mcp.tool.everything.echo2":  false,
		"mcp.tool.fs.read_text_file": true,
		"mcp.tool.fs.write_file":     false,
		"mcp.tool.x.a.yz":            true,
		"mcp.tool.x.a.yqqz":          true,
		"mcp.tool.x.a.yq":            false,
	} {
		if got := m.Exposed(action); got != want {
			t.Errorf("Exposed(%s) = %v, want %v", action, got, want)
		}
	}
	if !(&mcp.Mapping{}).Exposed("mcp.tool.any.thing") {
		t.Error("without expose, a tool is hidden")
	}
}

func FuzzParseMapping(f *testing.F) {
	f.Add([]byte(`{"server":"s","tools":{"t":{"resource":"/a/0"}},"expose":["mcp.tool.*.t"]}`))
	f.Add([]byte(`{"tools":{"t":{"resource":"/~0~1"}}}`))
	f.Add([]byte(`{"server":"a","server":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := mcp.ParseMapping(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed but does not validate: %v", err)
		}
		for name := range m.Tools {
			m.Resource("s", name, json.RawMessage(`{"a":[{"b":1}]}`))
		}
	})
}

func FuzzResource(f *testing.F) {
	f.Add("/path", []byte(`{"path":"x"}`))
	f.Add("/a/0", []byte(`{"a":["x"]}`))
	f.Add("/~1", []byte(`{"/":1.5e3}`))
	f.Fuzz(func(t *testing.T, ptr string, args []byte) {
		m := &mcp.Mapping{Tools: map[string]mcp.ToolMapping{"t": {Resource: ptr}}}
		r, err := m.Resource("s", "t", args)
		if err == nil && r == "" {
			t.Fatal("an empty resource without an error")
		}
	})
}

func FuzzManifestDigest(f *testing.F) {
	f.Add([]byte(`{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}`))
	f.Add([]byte(`{"tools":[]}`))
	f.Fuzz(func(t *testing.T, page []byte) {
		d, err := mcp.ManifestDigest(page)
		if err != nil {
			return
		}
		if !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
			t.Fatalf("digest %q", d)
		}
	})
}
