package pdp

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const examples = "../../../testdata/policies"

func demoInput(action string) *Input {
	return &Input{
		Actor:    Actor{ID: "spiffe://dev.ztlog.local/agent/demo", TrustDomain: "dev.ztlog.local", Path: "/agent/demo", Status: "registered", Brokers: []string{}, Labels: map[string]string{}},
		Action:   action,
		Resource: "r",
		Findings: []Finding{},
		Time:     "2026-11-21T10:00:00Z", CorrelationID: "c1",
	}
}

func TestOPAExamplePolicy(t *testing.T) {
	ctx := context.Background()
	p, err := LoadOPA(ctx, filepath.Join(examples, "opa"), "")
	if err != nil {
		t.Fatal(err)
	}
	v := p.Version()
	if v.Engine != "opa" || !strings.HasPrefix(v.Hash, "sha256:") || !strings.HasPrefix(v.SourceDigest, "sha256:") {
		t.Fatalf("version %+v", v)
	}
	pdp := NewPDP(p, time.Second)
	for _, tc := range []struct {
		mod   func(*Input)
		allow bool
		code  string
	}{
		{func(in *Input) {}, true, "policy.allow"},
		{func(in *Input) { in.Action = "aws.ec2.terminate_instances" }, false, "action.forbidden"},
		{func(in *Input) { in.Actor.Status = "revoked" }, false, "agent.revoked"},
		{func(in *Input) { in.Actor.ID = "spiffe://other.example/agent/demo" }, false, ReasonDefault},
	} {
		in := demoInput("demo.echo")
		tc.mod(in)
		d, _, err := pdp.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow != tc.allow || len(d.Reasons) == 0 || d.Reasons[0].Code != tc.code {
			t.Errorf("%s %s %s: %+v, want allow=%v %s", in.Actor.ID, in.Actor.Status, in.Action, d, tc.allow, tc.code)
		}
	}
}

// The hash ignores formatting and comments and follows every rule and
// data change; the source digest follows the bytes.
func TestOPAHash(t *testing.T) {
	ctx := context.Background()
	base := copyDir(t, filepath.Join(examples, "opa"))
	load := func(dir string) Version {
		p, err := LoadOPA(ctx, dir, "")
		if err != nil {
			t.Fatal(err)
		}
		return p.Version()
	}
	v0 := load(base)
	edit := func(file, old, new string) string {
		dir := copyDir(t, base)
		b, _ := os.ReadFile(filepath.Join(dir, file))
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s lacks %q", file, old)
		}
		os.WriteFile(filepath.Join(dir, file), []byte(strings.Replace(string(b), old, new, 1)), 0o644)
		return dir
	}
	same := map[string]string{
		"comment":  edit("authz.rego", "# The example policy", "# An edited comment. The example policy"),
		"spacing":  edit("authz.rego", "default allow := false", "default   allow   :=   false\n\n"),
		"jsonfmt":  edit("data.json", `"forbidden_actions": [`, `"forbidden_actions":[`),
		"newfile+": edit("authz.rego", "import rego.v1", "import rego.v1\n# trailing comment"),
	}
	for name, dir := range same {
		v := load(dir)
		if v.Hash != v0.Hash {
			t.Errorf("%s changed the policy hash", name)
		}
		if v.SourceDigest == v0.SourceDigest {
			t.Errorf("%s did not change the source digest", name)
		}
	}
	differ := map[string]string{
		"rule": edit("authz.rego", `permitted if input.action == "search.fast"`, `permitted if input.action == "search.faster"`),
		"data": edit("data.json", `"demo.*"`, `"demo.**"`),
		"msg":  edit("authz.rego", `"the agent is not registered"`, `"not registered"`),
		"list": edit("data.json", `"gpt-4o"`, `"gpt-4o", "o3"`),
	}
	for name, dir := range differ {
		if load(dir).Hash == v0.Hash {
			t.Errorf("a %s change kept the policy hash", name)
		}
	}
}

func TestCedarHash(t *testing.T) {
	ctx := context.Background()
	base := copyDir(t, filepath.Join(examples, "cedar"))
	load := func(dir string) Version {
		p, err := LoadCedar(ctx, dir, "")
		if err != nil {
			t.Fatal(err)
		}
		return p.Version()
	}
	v0 := load(base)
	edit := func(old, new string) string {
		dir := copyDir(t, base)
		b, _ := os.ReadFile(filepath.Join(dir, "authz.cedar"))
		if !strings.Contains(string(b), old) {
			t.Fatalf("authz.cedar lacks %q", old)
		}
		os.WriteFile(filepath.Join(dir, "authz.cedar"), []byte(strings.Replace(string(b), old, new, 1)), 0o644)
		return dir
	}
	for name, dir := range map[string]string{
		"comment": edit("// Guardrails:", "// Edited. Guardrails:"),
		"layout": edit(`forbid (principal, action, resource)
when { context.finding_count > 0 };`, `forbid(principal,action,resource) when {context.finding_count>0};`),
	} {
		if v := load(dir); v.Hash != v0.Hash || v.SourceDigest == v0.SourceDigest {
			t.Errorf("%s: hash %v (want unchanged), source digest changed %v", name, v.Hash != v0.Hash, v.SourceDigest != v0.SourceDigest)
		}
	}
	for name, dir := range map[string]string{
		"rule":    edit(`context.finding_count > 0`, `context.finding_count > 1`),
		"model":   edit(`["claude-sonnet-4", "gpt-4o"]`, `["claude-sonnet-4", "gpt-4o", "o3"]`),
		"message": edit(`@message("this action is never allowed")`, `@message("never")`),
	} {
		if load(dir).Hash == v0.Hash {
			t.Errorf("a %s change kept the Cedar policy hash", name)
		}
	}
	// A broken policy does not load.
	if _, err := LoadCedar(ctx, edit("forbid (principal, action, resource)", "forbid (principal, action, resource"), ""); err == nil {
		t.Fatal("a Cedar policy that does not parse was loaded")
	}
}

// Cedar skips a policy whose evaluation errors; the PDP must not let that
// turn into an allow.
func TestCedarEvaluationErrorIsADeny(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(`permit (principal, action, resource);
forbid (principal, action, resource) when { principal.no_such_attribute == "x" };
`), 0o644)
	p, err := LoadCedar(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := NewPDP(p, time.Second).Decide(context.Background(), demoInput("demo.echo"))
	if d.Allow || err == nil || d.Reasons[0].Code != ReasonError {
		t.Fatalf("erroring forbid: %+v %v", d, err)
	}
}

func copyDir(t *testing.T, src string) string {
	dst := t.TempDir()
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
	}
	return dst
}

type fakePolicy struct {
	eval func(ctx context.Context) (Decision, error)
}

func (f fakePolicy) Version() Version {
	return Version{Engine: "test", Hash: "sha256:" + strings.Repeat("0", 64), SourceDigest: "sha256:" + strings.Repeat("0", 64)}
}
func (f fakePolicy) Evaluate(ctx context.Context, in *Input) (Decision, error) { return f.eval(ctx) }

// Every way an engine can fail is a deny with a reason.
func TestPDPFailsClosed(t *testing.T) {
	for name, tc := range map[string]struct {
		eval func(ctx context.Context) (Decision, error)
		code string
	}{
		"error":     {func(context.Context) (Decision, error) { return Decision{Allow: true}, errors.New("boom") }, ReasonError},
		"undefined": {func(context.Context) (Decision, error) { return Decision{Allow: true}, ErrUndefined }, ReasonUndefined},
		"panic":     {func(context.Context) (Decision, error) { panic("engine bug") }, ReasonError},
		"timeout": {func(ctx context.Context) (Decision, error) {
			<-ctx.Done()
			return Decision{Allow: true}, ctx.Err()
		}, ReasonTimeout},
		"silent deny": {func(context.Context) (Decision, error) { return Decision{}, nil }, ReasonDefault},
	} {
		d, _, err := NewPDP(fakePolicy{tc.eval}, 50*time.Millisecond).Decide(context.Background(), demoInput("x"))
		if d.Allow || len(d.Reasons) == 0 || d.Reasons[0].Code != tc.code {
			t.Errorf("%s: %+v (err %v), want deny %s", name, d, err, tc.code)
		}
	}
}

func TestOPAUndefinedAndBroken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package ztlog.authz\nimport rego.v1\nallow if input.action == \"x\"\n"), 0o644)
	p, err := LoadOPA(ctx, dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := NewPDP(p, time.Second).Decide(ctx, demoInput("y"))
	if d.Allow || d.Reasons[0].Code != ReasonUndefined || err == nil {
		t.Fatalf("undefined allow: %+v %v", d, err)
	}
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package ztlog.authz\nallow if {"), 0o644)
	if _, err := LoadOPA(ctx, dir, ""); err == nil {
		t.Fatal("a policy that does not parse was loaded")
	}
}

// The OPA input is the Input's JSON encoding (input.schema.json): the value
// built directly equals OPA's parse of the JSON, for a full input and for
// every input of the shared table.
func TestInputValueIsTheJSONEncoding(t *testing.T) {
	in := demoInput("demo.echo")
	in.User = &User{Issuer: "https://idp", Subject: "alice", Scopes: []string{"a"}}
	in.Findings = []Finding{{Type: "email", Arg: "body", Offset: 3, Length: 9, Rule: "r"}}
	in.Attestation = &Attestation{Verified: true, Model: "m", ModelProvider: "p", ModelVersion: "v", ToolName: "shell", SandboxProfile: "strict",
		ToolManifest: "sha256:aa", Broker: "spiffe://dev.ztlog.local/broker/demo", PolicyHash: "sha256:bb", CodeDigest: "sha256:cc"}
	in.Broker = "spiffe://dev.ztlog.local/broker/demo"
	in.ArgsDigest = "sha256:dd"
	in.Actor.Owner = "team"
	in.Actor.Brokers = []string{"spiffe://dev.ztlog.local/broker/demo"}
	in.Actor.Labels = map[string]string{"tier": "dev", "zone": "a"}
	_, inputs, _ := loadTable(t)
	for i, in := range append([]*Input{in}, inputs...) {
		viaJSON, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ast.ValueFromReader(bytes.NewReader(viaJSON))
		if err != nil {
			t.Fatal(err)
		}
		if got := in.value(); got.Compare(want) != 0 {
			t.Errorf("input %d: the direct value differs from the JSON encoding:\n%v\n%s", i, got, viaJSON)
		}
	}
}

// Every input of the shared table, and a full one, validates against
// input.schema.json.
func TestInputSchema(t *testing.T) {
	raw, err := os.ReadFile("input.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("input.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("input.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	_, inputs, _ := loadTable(t)
	full := demoInput("demo.echo")
	full.User = &User{Issuer: "https://idp", Subject: "alice", Scopes: []string{"a"}}
	full.Findings = []Finding{{Type: "email", Rule: "email", Arg: "body", Offset: 3, Length: 9}}
	full.Attestation = &Attestation{Verified: true, Model: "m", SandboxProfile: "strict", ToolManifest: "sha256:" + strings.Repeat("1", 64)}
	full.ArgsDigest = "sha256:" + strings.Repeat("ab", 32)
	inputs = append(inputs, full)
	for i, in := range inputs {
		js, _ := json.Marshal(in)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err := s.Validate(v); err != nil {
			t.Errorf("input %d does not validate: %v\n%s", i, err, js)
		}
	}
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"actor":{"id":"x"},"action":"a"}`))
	if s.Validate(bad) == nil {
		t.Fatal("schema accepts an incomplete input")
	}
}

func TestManagerReloadCommitsAndKeepsTheOldOnFailure(t *testing.T) {
	ctx := context.Background()
	dir := copyDir(t, filepath.Join(examples, "cedar"))
	var commits []string
	fail := false
	commit := func(_ context.Context, v Version, by string) (uint64, error) {
		if fail {
			return 0, errors.New("log down")
		}
		commits = append(commits, by+" "+v.Hash)
		return uint64(len(commits) - 1), nil
	}
	m, err := NewManager(ctx, ManagerConfig{Engine: "cedar", Path: dir, Commit: commit})
	if err != nil {
		t.Fatal(err)
	}
	h0 := m.Status().Hash
	if len(commits) != 1 || commits[0] != "startup "+h0 {
		t.Fatalf("startup commits %v", commits)
	}
	// Unchanged: nothing committed.
	if err := m.Reload(ctx, "sighup"); err != nil || len(commits) != 1 {
		t.Fatalf("unchanged reload: %v %v", err, commits)
	}
	// A broken edit: the old version stays, the error is reported.
	path := filepath.Join(dir, "authz.cedar")
	good, _ := os.ReadFile(path)
	os.WriteFile(path, append(good, []byte("\nforbid (principal,")...), 0o644)
	if err := m.Reload(ctx, "file-change"); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	if st := m.Status(); st.Hash != h0 || st.ReloadError == "" || m.PDP().Current().Version().Hash != h0 {
		t.Fatalf("after a broken edit: %+v", st)
	}
	// A real change whose entry cannot be committed stays out of force.
	os.WriteFile(path, []byte(strings.Replace(string(good), "context.finding_count > 0", "context.finding_count > 1", 1)), 0o644)
	fail = true
	if err := m.Reload(ctx, "sighup"); err == nil || m.PDP().Current().Version().Hash != h0 {
		t.Fatalf("uncommitted version came into force: %v", err)
	}
	fail = false
	if err := m.Reload(ctx, "sighup"); err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if st.Hash == h0 || st.LoadedBy != "sighup" || st.ReloadError != "" || st.LogIndex != 1 || m.PDP().Current().Version().Hash != st.Hash {
		t.Fatalf("after a good reload: %+v", st)
	}
	// File changes are picked up by Watch.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := m.Watch(wctx, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, good, 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for m.Status().Hash != h0 {
		if time.Now().After(deadline) {
			t.Fatalf("file change not picked up: %+v", m.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m.Status().LoadedBy != "file-change" {
		t.Fatalf("%+v", m.Status())
	}
}

// An OPA bundle (.tar.gz with a .manifest) loads like a directory, takes its
// revision from the manifest, and hashes like the same rules in a directory.
func TestOPABundle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar.gz")
	f, _ := os.Create(path)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, file := range map[string]string{"/.manifest": "", "/authz.rego": "authz.rego", "/data.json": "data.json"} {
		var b []byte
		if file == "" {
			b = []byte(`{"revision":"bundle-r7","roots":[""]}`)
		} else {
			b, _ = os.ReadFile(filepath.Join(examples, "opa", file))
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	gz.Close()
	f.Close()
	ctx := context.Background()
	p, err := LoadOPA(ctx, path, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadOPA(ctx, filepath.Join(examples, "opa"), "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Version().Revision != "bundle-r7" || p.Version().Hash != d.Version().Hash {
		t.Fatalf("bundle version %+v, directory hash %s", p.Version(), d.Version().Hash)
	}
	dec, _, err := NewPDP(p, time.Second).Decide(ctx, demoInput("demo.echo"))
	if err != nil || !dec.Allow {
		t.Fatalf("bundle decision %+v %v", dec, err)
	}
}

// Both engines see the attested model's provider and version and the tool's
// name: a rule over them decides the same way in OPA and Cedar.
func TestAttestedModelAndToolReachBothEngines(t *testing.T) {
	ctx := context.Background()
	opaDir, cedarDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(opaDir, "p.rego"), []byte(`package ztlog.authz
import rego.v1
default allow := false
allow if {
	input.attestation.model_provider == "anthropic"
	input.attestation.model_version == "2025-05-14"
	input.attestation.tool_name == "shell"
}
`), 0o644)
	os.WriteFile(filepath.Join(cedarDir, "p.cedar"), []byte(`permit (principal, action, resource) when {
	context.attestation.model_provider == "anthropic" &&
	context.attestation.model_version == "2025-05-14" &&
	context.attestation.tool_name == "shell"
};
`), 0o644)
	o, err := LoadOPA(ctx, opaDir, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadCedar(ctx, cedarDir, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		att  *Attestation
		want bool
	}{
		"matching":       {&Attestation{Verified: true, Model: "claude-sonnet-4", ModelProvider: "anthropic", ModelVersion: "2025-05-14", ToolName: "shell"}, true},
		"other provider": {&Attestation{Verified: true, Model: "claude-sonnet-4", ModelProvider: "other", ModelVersion: "2025-05-14", ToolName: "shell"}, false},
		"other version":  {&Attestation{Verified: true, Model: "claude-sonnet-4", ModelProvider: "anthropic", ModelVersion: "2024-01-01", ToolName: "shell"}, false},
		"no tool":        {&Attestation{Verified: true, Model: "claude-sonnet-4", ModelProvider: "anthropic", ModelVersion: "2025-05-14"}, false},
		"no attestation": {nil, false},
	} {
		in := demoInput("demo.echo")
		in.Attestation = tc.att
		for engine, p := range map[string]Policy{"opa": o, "cedar": c} {
			d, _, _ := NewPDP(p, time.Second).Decide(ctx, in)
			if d.Allow != tc.want {
				t.Errorf("%s, %s: allow %v, want %v (%+v)", name, engine, d.Allow, tc.want, d.Reasons)
			}
		}
	}
}

// An OPA decision evaluates the rules that define allow, reasons and
// assurance, and what they depend on: a helper rule of the package that
// none of them uses is not evaluated, so its runtime error does not
// decide (it would if it were used).
func TestOPAEvaluatesOnlyTheDecisionMembers(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, rules string
		allow       bool
		code        string
	}{
		{"unused helper", "allow := true\nbroken := 1 / 0\n", true, ""},
		{"used helper", "allow if broken > 0\nbroken := 1 / 0\n", false, ReasonError},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package ztlog.authz\nimport rego.v1\n"+c.rules), 0o644)
		p, err := LoadOPA(ctx, dir, "")
		if err != nil {
			t.Fatal(err)
		}
		d, _, _ := NewPDP(p, time.Second).Decide(ctx, demoInput("x"))
		if d.Allow != c.allow {
			t.Errorf("%s: allow %v, want %v (%+v)", c.name, d.Allow, c.allow, d.Reasons)
		}
		if c.code != "" && (len(d.Reasons) == 0 || d.Reasons[0].Code != c.code) {
			t.Errorf("%s: reasons %+v, want %s", c.name, d.Reasons, c.code)
		}
	}
}

// A policy without the package data.ztlog.authz decides nothing: the
// error says to define it.
func TestOPAMissingPackage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package other\nimport rego.v1\nallow := true\n"), 0o644)
	p, err := LoadOPA(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := NewPDP(p, time.Second).Decide(ctx, demoInput("x"))
	if d.Allow {
		t.Fatal("a policy without data.ztlog.authz allowed")
	}
	if err == nil || !strings.Contains(err.Error(), "define package ztlog.authz with an allow rule") {
		t.Errorf("err = %v, want it to say to define package ztlog.authz", err)
	}
}
