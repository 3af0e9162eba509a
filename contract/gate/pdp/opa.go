package pdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/policysource"
	"github.com/zt-infra/ztlog/internal/jcs"
)

// OPAQuery is what an OPA policy must define: the document
// data.ztlog.authz, with
//
//	allow   := true when the action is allowed (anything else is a deny)
//	reasons := a set or array of {"code": ..., "message": ...} objects
//	           (or strings) explaining the decision (optional)
const OPAQuery = "data.ztlog.authz"

// opaDecisionQuery is the query evaluated: the members of OPAQuery a
// decision reads, and only those. Asking for each member by name evaluates
// the rules that define it (and what they depend on), not every rule of
// the package, and builds no object of the whole package.
const opaDecisionQuery = `decision := {k: v | some k in ["allow", "reasons", "assurance"]; v := data.ztlog.authz[k]}`

type opaPolicy struct {
	version Version
	query   rego.PreparedEvalQuery
	modules []*ast.Module
	data    map[string]any

	// The partial evaluation of Possible, prepared on first use.
	partialOnce  sync.Once
	partialQuery rego.PreparedPartialQuery
	partialErr   error
}

// regoOptions are the modules, data and settings every query of the
// policy is prepared with (the decision's and Possible's).
func (p *opaPolicy) regoOptions() []func(*rego.Rego) {
	opts := make([]func(*rego.Rego), 0, len(p.modules)+3)
	for _, m := range p.modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	return append(opts, rego.Store(inmem.NewFromObject(p.data)), rego.StrictBuiltinErrors(true))
}

// LoadOPA loads an OPA policy from a directory (*.rego modules, data.json
// and data.yaml documents placed by directory, as `opa eval -d` does) or an
// OPA bundle (a .tar.gz file or a bundle directory holding a .manifest),
// compiles it and prepares the query: CollectOPA, then Compile.
func LoadOPA(ctx context.Context, path, revision string) (Policy, error) {
	src, err := CollectOPA(path)
	if err != nil {
		return nil, err
	}
	return compileOPA(ctx, src, revision, path)
}

// CollectOPA reads the files an OPA policy at path consists of, exactly as
// they are: a bundle file alone, under its base name; a bundle directory's
// modules, data, manifest and signatures; a policy directory's *.rego
// modules (but *_test.rego) and data.json, data.yaml and data.yml
// documents, outside hidden directories. Paths are relative to path.
func CollectOPA(path string) (*policysource.Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: opa: %w", err)
	}
	src := &policysource.Source{Engine: "opa", Files: map[string][]byte{}}
	if !st.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("policy: opa: %w", err)
		}
		if strings.HasSuffix(st.Name(), ".rego") {
			return nil, fmt.Errorf("policy: opa %s: give the directory holding the module, or a bundle (.tar.gz)", path)
		}
		src.Files[st.Name()] = b
		return src, nil
	}
	bundleDir := fileExists(filepath.Join(path, ".manifest"))
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != path && strings.HasPrefix(name, ".") && !bundleDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !opaFile(name, bundleDir) {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src.Files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: opa %s: %w", path, err)
	}
	if err := src.Check(); err != nil {
		return nil, fmt.Errorf("policy: opa %s: %w", path, err)
	}
	return src, nil
}

// opaFile reports whether a file of this name is part of an OPA policy
// directory (or, with bundle set, of a bundle directory).
func opaFile(name string, bundle bool) bool {
	switch {
	case name == "data.json" || name == "data.yaml" || name == "data.yml":
		return true
	case strings.HasSuffix(name, ".rego"):
		return bundle || !strings.HasSuffix(name, "_test.rego")
	case bundle:
		return name == ".manifest" || name == ".signatures.json" || name == "patch.json" || strings.HasSuffix(name, ".wasm")
	}
	return false
}

// compileOPA compiles the collected files; origin names them in errors
// and in the version's Source.
func compileOPA(ctx context.Context, src *policysource.Source, revision, origin string) (Policy, error) {
	var modules map[string]*ast.Module
	var data map[string]any
	fsys := src.FS()
	paths := src.Paths()
	tarball := len(paths) == 1 && !strings.Contains(paths[0], "/") && !strings.HasSuffix(paths[0], ".rego") && !opaFile(paths[0], false)
	if _, ok := src.Files[".manifest"]; ok || tarball {
		root := "."
		if tarball {
			root = paths[0]
		}
		b, err := loader.NewFileLoader().WithFS(fsys).WithProcessAnnotation(true).AsBundle(root)
		if err != nil {
			return nil, fmt.Errorf("policy: opa bundle %s: %w", origin, err)
		}
		modules, data = map[string]*ast.Module{}, b.Data
		for _, m := range b.Modules {
			modules[m.Path] = m.Parsed
		}
		if revision == "" {
			revision = b.Manifest.Revision
		}
	} else {
		res, err := loader.NewFileLoader().WithFS(fsys).WithProcessAnnotation(true).Filtered([]string{"."}, func(abs string, info os.FileInfo, depth int) bool {
			return !info.IsDir() && !opaFile(info.Name(), false)
		})
		if err != nil {
			return nil, fmt.Errorf("policy: opa %s: %w", origin, err)
		}
		modules, data = map[string]*ast.Module{}, res.Documents
		for name, m := range res.Modules {
			modules[name] = m.Parsed
		}
	}
	if len(modules) == 0 {
		return nil, fmt.Errorf("policy: opa %s: no .rego modules", origin)
	}
	hash, err := opaHash(modules, data)
	if err != nil {
		return nil, fmt.Errorf("policy: opa %s: %w", origin, err)
	}
	if data == nil {
		data = map[string]any{}
	}
	p := &opaPolicy{
		version: Version{Engine: "opa", Hash: hash, Revision: revision, SourceDigest: src.Digest(), Source: origin, Content: src},
		data:    data,
	}
	for _, m := range modules {
		p.modules = append(p.modules, m)
	}
	pq, err := rego.New(append(p.regoOptions(), rego.Query(opaDecisionQuery))...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: opa %s does not compile: %w", origin, err)
	}
	p.query = pq
	return p, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// jcsDigest is the digest of v's RFC 8785 (JCS) serialization.
func jcsDigest(v any) (string, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	c, err := jcs.Canonicalize(js)
	if err != nil {
		return "", err
	}
	return entry.Digest(c), nil
}

// opaHash is the OPA policy hash: the digest of the JCS object
//
//	{"engine":"opa","modules":[<each module formatted by OPA's formatter
//	  with comments removed, sorted>],"data":<the data document>}
//
// so reformatting a module, reordering files or editing comments keeps the
// hash, and any change to a rule or to data changes it.
func opaHash(modules map[string]*ast.Module, data map[string]any) (string, error) {
	texts := make([]string, 0, len(modules))
	var annotations []string
	for _, m := range modules {
		c := m.Copy()
		c.Comments = nil
		c.Annotations = nil
		b, err := format.AstWithOpts(c, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			return "", err
		}
		texts = append(texts, string(b))
		// METADATA annotations are comments to the formatter, yet a rule
		// can read them (rego.metadata.rule()): each one is hashed with
		// the path it annotates, without its location.
		for _, a := range m.Annotations {
			ac := *a
			ac.Location = nil
			j, err := json.Marshal(struct {
				Target string           `json:"target"`
				A      *ast.Annotations `json:"annotation"`
			}{a.GetTargetPath().String(), &ac})
			if err != nil {
				return "", err
			}
			annotations = append(annotations, string(j))
		}
	}
	sort.Strings(texts)
	if data == nil {
		data = map[string]any{}
	}
	obj := map[string]any{"engine": "opa", "modules": texts, "data": data}
	if len(annotations) > 0 {
		sort.Strings(annotations)
		obj["annotations"] = annotations
	}
	return jcsDigest(obj)
}

func (p *opaPolicy) Version() Version { return p.version }

func (p *opaPolicy) Evaluate(ctx context.Context, in *Input) (Decision, error) {
	// The input as an AST value built directly, and no metrics kept.
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(in.value()), rego.EvalMetrics(metrics.NoOp()))
	if err != nil {
		return Decision{}, err
	}
	var doc map[string]any
	if len(rs) > 0 {
		doc, _ = rs[0].Bindings["decision"].(map[string]any)
	}
	if len(doc) == 0 {
		return Decision{}, fmt.Errorf("%w: %s is not defined (define package ztlog.authz with an allow rule)", ErrUndefined, OPAQuery)
	}
	allowV, defined := doc["allow"]
	if !defined {
		return Decision{}, fmt.Errorf("%w: %s.allow is not defined for this input (give it a default)", ErrUndefined, OPAQuery)
	}
	allow, ok := allowV.(bool)
	if !ok {
		return Decision{}, fmt.Errorf("%s.allow is %T, not a boolean", OPAQuery, allowV)
	}
	reasons, err := opaReasons(doc["reasons"])
	if err != nil {
		return Decision{}, err
	}
	level := Sequenced
	if v, ok := doc["assurance"]; ok && allow {
		s, isString := v.(string)
		if !isString {
			return Decision{}, fmt.Errorf("%s.assurance is %T, want the string %q or %q", OPAQuery, v, Sequenced, Witnessed)
		}
		if level, err = ParseAssurance(s); err != nil {
			return Decision{}, fmt.Errorf("%s.%w", OPAQuery, err)
		}
	}
	return Decision{Allow: allow, Reasons: reasons, Assurance: level}, nil
}

func opaReasons(v any) ([]entry.Reason, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s.reasons is %T, want a set or array", OPAQuery, v)
	}
	out := make([]entry.Reason, 0, len(list))
	for _, r := range list {
		switch r := r.(type) {
		case string:
			out = append(out, entry.Reason{Code: r, Message: r})
		case map[string]any:
			code, _ := r["code"].(string)
			msg, _ := r["message"].(string)
			if code == "" {
				return nil, errors.New(OPAQuery + ".reasons: an object without a string code")
			}
			out = append(out, entry.Reason{Code: code, Message: msg})
		default:
			return nil, fmt.Errorf("%s.reasons holds a %T", OPAQuery, r)
		}
	}
	// Sets come out in a stable order already; keep it deterministic anyway.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out, nil
}

// The input's member names are interned: value builds each input with the
// same key terms.
func init() {
	ast.InternStringTerm("actor", "id", "trust_domain", "path", "status", "owner", "brokers", "labels",
		"action", "resource", "args_digest", "broker", "findings", "type", "offset", "length", "arg", "rule",
		"time", "correlation_id", "user", "issuer", "subject", "scopes", "attestation", "verified",
		"model", "model_provider", "model_version", "tool_manifest", "tool_name", "sandbox_profile", "policy_hash", "code_digest",
	)
}

// value is the input as an OPA value, built directly: the same value as
// its JSON encoding (input.schema.json) parsed by OPA.
func (in *Input) value() ast.Value {
	str, key := ast.StringTerm, ast.InternedTerm[string]
	brokers := make([]*ast.Term, len(in.Actor.Brokers))
	for i, b := range in.Actor.Brokers {
		brokers[i] = str(b)
	}
	labels := make([][2]*ast.Term, 0, len(in.Actor.Labels))
	for k, v := range in.Actor.Labels {
		labels = append(labels, ast.Item(str(k), str(v)))
	}
	actor := make([][2]*ast.Term, 0, 7)
	actor = append(actor, ast.Item(key("id"), str(in.Actor.ID)), ast.Item(key("trust_domain"), str(in.Actor.TrustDomain)),
		ast.Item(key("path"), str(in.Actor.Path)), ast.Item(key("status"), str(in.Actor.Status)),
		ast.Item(key("brokers"), ast.ArrayTerm(brokers...)), ast.Item(key("labels"), ast.ObjectTerm(labels...)))
	if in.Actor.Owner != "" {
		actor = append(actor, ast.Item(key("owner"), str(in.Actor.Owner)))
	}
	findings := make([]*ast.Term, len(in.Findings))
	for i, f := range in.Findings {
		m := make([][2]*ast.Term, 0, 5)
		m = append(m, ast.Item(key("type"), str(f.Type)), ast.Item(key("offset"), ast.IntNumberTerm(f.Offset)),
			ast.Item(key("length"), ast.IntNumberTerm(f.Length)))
		if f.Arg != "" {
			m = append(m, ast.Item(key("arg"), str(f.Arg)))
		}
		if f.Rule != "" {
			m = append(m, ast.Item(key("rule"), str(f.Rule)))
		}
		findings[i] = ast.ObjectTerm(m...)
	}
	doc := make([][2]*ast.Term, 0, 10)
	doc = append(doc, ast.Item(key("actor"), ast.ObjectTerm(actor...)), ast.Item(key("action"), str(in.Action)),
		ast.Item(key("resource"), str(in.Resource)), ast.Item(key("findings"), ast.ArrayTerm(findings...)),
		ast.Item(key("time"), str(in.Time)), ast.Item(key("correlation_id"), str(in.CorrelationID)))
	if in.ArgsDigest != "" {
		doc = append(doc, ast.Item(key("args_digest"), str(in.ArgsDigest)))
	}
	if in.Broker != "" {
		doc = append(doc, ast.Item(key("broker"), str(in.Broker)))
	}
	if u := in.User; u != nil {
		scopes := make([]*ast.Term, len(u.Scopes))
		for i, s := range u.Scopes {
			scopes[i] = str(s)
		}
		doc = append(doc, ast.Item(key("user"), ast.ObjectTerm(ast.Item(key("issuer"), str(u.Issuer)),
			ast.Item(key("subject"), str(u.Subject)), ast.Item(key("scopes"), ast.ArrayTerm(scopes...)))))
	}
	if a := in.Attestation; a != nil {
		att := [][2]*ast.Term{ast.Item(key("verified"), ast.BooleanTerm(a.Verified))}
		for _, kv := range [...][2]string{{"model", a.Model}, {"model_provider", a.ModelProvider}, {"model_version", a.ModelVersion},
			{"tool_manifest", a.ToolManifest}, {"tool_name", a.ToolName}, {"sandbox_profile", a.SandboxProfile},
			{"broker", a.Broker}, {"policy_hash", a.PolicyHash}, {"code_digest", a.CodeDigest}} {
			if kv[1] != "" {
				att = append(att, ast.Item(key(kv[0]), str(kv[1])))
			}
		}
		doc = append(doc, ast.Item(key("attestation"), ast.ObjectTerm(att...)))
	}
	return ast.NewObject(doc...)
}
