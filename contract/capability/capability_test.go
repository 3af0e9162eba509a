package capability

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "embed"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite testdata/capabilities")

const dir = "../../testdata/capabilities"

//go:embed manifest.schema.json
var schemaJSON []byte

type vector struct {
	File string `json:"file"`
	// Digest of a valid manifest.
	Digest string `json:"digest,omitempty"`
	// Field an invalid manifest's error names.
	Field string `json:"field,omitempty"`
	Why   string `json:"why"`
}

var validVectors = map[string]struct {
	doc, why string
}{
	"strict.json": {`{
  "v": 1,
  "profile": "strict",
  "filesystem": {
    "read": ["/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ld.so.cache"],
    "read_write": ["/tmp/zt-work"]
  },
  "network": {"mode": "blocked"},
  "env": ["PATH"],
  "workdir": "/tmp/zt-work",
  "limits": {"timeout_seconds": 30, "memory_bytes": 536870912, "processes": 64, "open_files": 256},
  "commands": ["echo", "/usr/bin/cat"],
  "outputs": ["result.json"]
}
`, "the example of manifest.md"},
	"strict-reordered.json": {`{"workdir":"/tmp/zt-work","v":1,"outputs":["result.json"],"commands":["/usr/bin/cat","echo"],"limits":{"processes":64,"open_files":256,"timeout_seconds":30,"memory_bytes":536870912},"env":["PATH"],"network":{"mode":"blocked"},"filesystem":{"read_write":["/tmp/zt-work"],"read":["/etc/ld.so.cache","/lib64","/usr","/sbin","/lib","/bin"],"write":[]},"profile":"strict"}
`, "the same manifest, members and lists reordered, an empty list added: same digest"},
	"allow-list.json": {`{"v":1,"profile":"fetch","filesystem":{"read":["/usr","/etc/ssl/certs"],"write":["/var/tmp/out"]},"network":{"mode":"allow","domains":["api.example.com","*.cdn.example.net"],"ports":[443,8443]},"env":["PATH","HOME","LANG"],"workdir":"/var/tmp/out","limits":{"timeout_seconds":600,"cpu_seconds":120,"file_size_bytes":1048576},"commands":["curl"]}
`, "an allow list of domains and ports, write-only output directory"},
	"unrestricted.json": {`{"v":1,"profile":"dev","filesystem":{"read_write":["/home/dev/project"]},"network":{"mode":"unrestricted"},"workdir":"/home/dev/project","limits":{"timeout_seconds":3600},"commands":["make","go"]}
`, "unrestricted network, a label profile"},
}

var invalidVectors = map[string]struct {
	doc, field, why string
}{
	"blocked-with-domains.json": {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked","domains":["a.example"]},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network", "a blocked network cannot allow domains"},
	"port-zero.json":            {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"allow","ports":[0]},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network.ports[0]", "ports are 1-65535"},
	"port-65536.json":           {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"allow","ports":[65536]},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network.ports[0]", "ports are 1-65535"},
	"domain-ip.json":            {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"allow","domains":["10.0.0.1"]},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network.domains[0]", "an IP address is not a domain"},
	"domain-upper.json":         {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"allow","domains":["API.example.com"]},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network.domains[0]", "domains are lower case"},
	"domain-newline.json":       {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"allow","domains":["a.example\ncom"]},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network.domains[0]", "a newline in a domain"},
	"allow-empty.json":          {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"allow"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "network", "allow with nothing allowed"},
	"path-nul.json":             {`{"v":1,"profile":"x","filesystem":{"read":["/usr\u0000/x"]},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "filesystem.read[0]", "NUL in a path"},
	"path-relative.json":        {`{"v":1,"profile":"x","filesystem":{"read":["usr"]},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "filesystem.read[0]", "relative path"},
	"path-dotdot.json":          {`{"v":1,"profile":"x","filesystem":{"read_write":["/tmp/../etc"]},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "filesystem.read_write[0]", "unclean path"},
	"path-twice.json":           {`{"v":1,"profile":"x","filesystem":{"read":["/usr"],"read_write":["/usr"]},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "filesystem.read_write[0]", "a path granted twice"},
	"no-commands.json":          {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":[]}`, "commands", "an empty allow list"},
	"command-relative.json":     {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["bin/echo"]}`, "commands[0]", "a command with a slash must be absolute"},
	"no-timeout.json":           {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{},"commands":["echo"]}`, "limits.timeout_seconds", "the timeout is required"},
	"memory-tiny.json":          {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1,"memory_bytes":1024},"commands":["echo"]}`, "limits.memory_bytes", "less than 1 MiB"},
	"env-bad.json":              {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"env":["A=B"],"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "env[0]", "a variable name with ="},
	"unknown-member.json":       {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"],"privileged":true}`, "manifest", "a member this version does not define"},
	"version-2.json":            {`{"v":2,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "v", "another version"},
	"output-escapes.json":       {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"],"outputs":["../etc/passwd"]}`, "outputs[0]", "an output outside workdir"},
	"strict-network.json":       {`{"v":1,"profile":"strict","filesystem":{"read_write":["/w"]},"network":{"mode":"unrestricted"},"workdir":"/w","limits":{"timeout_seconds":30,"memory_bytes":1048576,"processes":1},"commands":["echo"]}`, "profile", "strict with network"},
	"strict-write-outside.json": {`{"v":1,"profile":"strict","filesystem":{"read_write":["/w","/etc"]},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":30,"memory_bytes":1048576,"processes":1},"commands":["echo"]}`, "profile", "strict writing outside workdir"},
	"strict-no-memory.json":     {`{"v":1,"profile":"strict","filesystem":{"read_write":["/w"]},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":30,"processes":1},"commands":["echo"]}`, "profile", "strict without a memory limit"},
	"duplicate-member.json":     {`{"v":1,"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "manifest", "a duplicate member"},
	"no-filesystem.json":        {`{"v":1,"profile":"x","network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "filesystem", "filesystem is required"},
	"processes-zero.json":       {`{"v":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1,"processes":0},"commands":["echo"]}`, "limits.processes", "an explicit 0 is not a limit (found by make fuzz-long)"},
	"uppercase-member.json":     {`{"V":1,"profile":"x","filesystem":{},"network":{"mode":"blocked"},"workdir":"/w","limits":{"timeout_seconds":1},"commands":["echo"]}`, "manifest", "a differently-cased member"},
}

func TestVectors(t *testing.T) {
	if *update {
		os.RemoveAll(dir)
		var vs []vector
		write := func(name, doc string) {
			path := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, v := range validVectors {
			m, err := Parse([]byte(v.doc))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			d, _ := m.Digest()
			write("valid/"+name, v.doc)
			vs = append(vs, vector{File: "valid/" + name, Digest: d, Why: v.why})
		}
		for name, v := range invalidVectors {
			write("invalid/"+name, v.doc)
			vs = append(vs, vector{File: "invalid/" + name, Field: v.field, Why: v.why})
		}
		sortVectors(vs)
		b, _ := json.MarshalIndent(vs, "", "  ")
		write("vectors.json", string(b)+"\n")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	schema := compileSchema(t)
	digests := map[string]string{}
	for _, v := range vs {
		doc, err := os.ReadFile(filepath.Join(dir, v.File))
		if err != nil {
			t.Fatal(err)
		}
		inst, jerr := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		m, err := Parse(doc)
		if v.Digest != "" {
			if err != nil {
				t.Errorf("%s: %v", v.File, err)
				continue
			}
			d, _ := m.Digest()
			if d != v.Digest {
				t.Errorf("%s: digest %s, want %s", v.File, d, v.Digest)
			}
			digests[v.File] = d
			if jerr != nil || schema.Validate(inst) != nil {
				t.Errorf("%s: the schema refuses a valid manifest: %v", v.File, schema.Validate(inst))
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: parsed, want an error naming %s (%s)", v.File, v.Field, v.Why)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), ": "+v.Field+": ") {
			t.Errorf("%s: error %q does not name %s", v.File, err, v.Field)
		}
	}
	if digests["valid/strict.json"] == "" || digests["valid/strict.json"] != digests["valid/strict-reordered.json"] {
		t.Errorf("reordering changed the digest: %v", digests)
	}
	if len(digests) != len(validVectors) {
		t.Errorf("%d valid vectors, want %d", len(digests), len(validVectors))
	}
}

func sortVectors(vs []vector) {
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if vs[j].File < vs[i].File {
				vs[i], vs[j] = vs[j], vs[i]
			}
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("manifest.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDigestChangesWithEveryGrant: any grant, limit or command changes the
// digest.
func TestDigestChangesWithEveryGrant(t *testing.T) {
	base := Strict("/tmp/w", "echo")
	d0, err := base.Digest()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{d0: "base"}
	for name, edit := range map[string]func(m *Manifest){
		"read":      func(m *Manifest) { m.Filesystem.Read = append(m.Filesystem.Read, "/etc") },
		"write":     func(m *Manifest) { m.Filesystem.Write = []string{"/tmp/w/out"} },
		"workdir":   func(m *Manifest) { m.Profile, m.Workdir = "loose", "/tmp/w/sub" },
		"timeout":   func(m *Manifest) { m.Limits.TimeoutSeconds = 31 },
		"memory":    func(m *Manifest) { m.Limits.MemoryBytes++ },
		"command":   func(m *Manifest) { m.Commands = append(m.Commands, "cat") },
		"env":       func(m *Manifest) { m.Env = append(m.Env, "HOME") },
		"outputs":   func(m *Manifest) { m.Outputs = []string{"out.txt"} },
		"profile":   func(m *Manifest) { m.Profile = "loose" },
		"network":   func(m *Manifest) { m.Profile, m.Network = "loose", Network{Mode: NetUnrestricted} },
		"processes": func(m *Manifest) { m.Limits.Processes = 1 },
	} {
		m := Strict("/tmp/w", "echo")
		edit(m)
		if err := m.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, _ := m.Digest()
		if prev, dup := seen[d]; dup {
			t.Errorf("%s has the same digest as %s", name, prev)
		}
		seen[d] = name
	}
	if err := Strict("/tmp/w").Validate(); err == nil {
		t.Error("a strict manifest with no commands validated")
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range validVectors {
		f.Add([]byte(v.doc))
	}
	for _, v := range invalidVectors {
		f.Add([]byte(v.doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		c, err := m.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		// The canonical form is itself a valid manifest with the same digest.
		m2, err := Parse(c)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c)
		}
		d1, _ := m.Digest()
		d2, _ := m2.Digest()
		if d1 != d2 {
			t.Fatalf("canonical form changes the digest")
		}
	})
}
