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

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/jcs"
)

// OPAQuery is what an OPA policy must define: the document
// data.ztlog.authz, with
//
//	allow   := true when the action is allowed (anything else is a deny)
//	reasons := a set or array of {"code": ..., "message": ...} objects
//	           (or strings) explaining the decision (optional)
const OPAQuery = "data.ztlog.authz"

type opaPolicy struct {
	version Version
	query   rego.PreparedEvalQuery
}

// LoadOPA loads an OPA policy from a directory (*.rego modules, data.json
// and data.yaml documents placed by directory, as `opa eval -d` does) or an
// OPA bundle (a .tar.gz file or a bundle directory holding a .manifest),
// compiles it and prepares the query.
func LoadOPA(ctx context.Context, path, revision string) (Policy, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: opa: %v", err)
	}
	var modules map[string]*ast.Module
	var data map[string]any
	var raw map[string][]byte
	isBundle := !st.IsDir() || fileExists(filepath.Join(path, ".manifest"))
	if isBundle {
		b, err := loader.NewFileLoader().WithProcessAnnotation(true).AsBundle(path)
		if err != nil {
			return nil, fmt.Errorf("policy: opa bundle %s: %v", path, err)
		}
		modules, data, raw = map[string]*ast.Module{}, b.Data, map[string][]byte{}
		for _, m := range b.Modules {
			modules[m.Path] = m.Parsed
			raw[m.Path] = m.Raw
		}
		if rb, err := os.ReadFile(path); err == nil && !st.IsDir() {
			raw = map[string][]byte{filepath.Base(path): rb}
		}
		if revision == "" {
			revision = b.Manifest.Revision
		}
	} else {
		res, err := loader.NewFileLoader().WithProcessAnnotation(true).Filtered([]string{path}, func(abs string, info os.FileInfo, depth int) bool {
			name := info.Name()
			if info.IsDir() {
				return strings.HasPrefix(name, ".") && depth > 0
			}
			return !(strings.HasSuffix(name, ".rego") || name == "data.json" || name == "data.yaml" || name == "data.yml") || strings.HasSuffix(name, "_test.rego")
		})
		if err != nil {
			return nil, fmt.Errorf("policy: opa %s: %v", path, err)
		}
		modules, data, raw = map[string]*ast.Module{}, res.Documents, map[string][]byte{}
		for name, m := range res.Modules {
			modules[name] = m.Parsed
			raw[name] = m.Raw
		}
		if err := readRaw(path, raw); err != nil {
			return nil, err
		}
	}
	if len(modules) == 0 {
		return nil, fmt.Errorf("policy: opa %s: no .rego modules", path)
	}
	hash, err := opaHash(modules, data)
	if err != nil {
		return nil, fmt.Errorf("policy: opa %s: %v", path, err)
	}
	parsed := make([]func(*rego.Rego), 0, len(modules)+3)
	for _, m := range modules {
		parsed = append(parsed, rego.ParsedModule(m))
	}
	if data == nil {
		data = map[string]any{}
	}
	parsed = append(parsed, rego.Query(OPAQuery), rego.Store(inmem.NewFromObject(data)), rego.StrictBuiltinErrors(true))
	pq, err := rego.New(parsed...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: opa %s does not compile: %v", path, err)
	}
	return &opaPolicy{
		version: Version{Engine: "opa", Hash: hash, Revision: revision, SourceDigest: sourceDigest(raw), Source: path},
		query:   pq,
	}, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// readRaw adds the data files under dir to raw (modules are already in).
func readRaw(dir string, raw map[string][]byte) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(d.Name() == "data.json" || d.Name() == "data.yaml" || d.Name() == "data.yml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		raw[p] = b
		return nil
	})
}

// sourceDigest is the digest of the sources exactly as loaded: the JCS
// object {file name relative to nothing in particular: digest of bytes}.
func sourceDigest(raw map[string][]byte) string {
	m := map[string]string{}
	for name, b := range raw {
		m[filepath.ToSlash(name)] = entry.Digest(b)
	}
	d, _ := jcsDigest(m) // a map of strings always encodes
	return d
}

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
	v, err := ast.InterfaceToValue(in.document())
	if err != nil {
		return Decision{}, err
	}
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(v))
	if err != nil {
		return Decision{}, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{}, fmt.Errorf("%w: %s is not defined (define package ztlog.authz with an allow rule)", ErrUndefined, OPAQuery)
	}
	doc, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("%s is not an object", OPAQuery)
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
	return Decision{Allow: allow, Reasons: reasons}, nil
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

// document is the input as plain JSON values (what InterfaceToValue takes
// without a JSON round trip).
func (in *Input) document() map[string]any {
	brokers := make([]any, len(in.Actor.Brokers))
	for i, b := range in.Actor.Brokers {
		brokers[i] = b
	}
	labels := make(map[string]any, len(in.Actor.Labels))
	for k, v := range in.Actor.Labels {
		labels[k] = v
	}
	actor := map[string]any{
		"id": in.Actor.ID, "trust_domain": in.Actor.TrustDomain, "path": in.Actor.Path,
		"status": in.Actor.Status, "brokers": brokers, "labels": labels,
	}
	if in.Actor.Owner != "" {
		actor["owner"] = in.Actor.Owner
	}
	findings := make([]any, len(in.Findings))
	for i, f := range in.Findings {
		m := map[string]any{"type": f.Type, "offset": json.Number(fmt.Sprint(f.Offset)), "length": json.Number(fmt.Sprint(f.Length))}
		if f.Arg != "" {
			m["arg"] = f.Arg
		}
		if f.Rule != "" {
			m["rule"] = f.Rule
		}
		findings[i] = m
	}
	doc := map[string]any{
		"actor": actor, "action": in.Action, "resource": in.Resource, "findings": findings,
		"time": in.Time, "correlation_id": in.CorrelationID,
	}
	if in.ArgsDigest != "" {
		doc["args_digest"] = in.ArgsDigest
	}
	if in.Broker != "" {
		doc["broker"] = in.Broker
	}
	if u := in.User; u != nil {
		scopes := make([]any, len(u.Scopes))
		for i, s := range u.Scopes {
			scopes[i] = s
		}
		doc["user"] = map[string]any{"issuer": u.Issuer, "subject": u.Subject, "scopes": scopes}
	}
	if a := in.Attestation; a != nil {
		att := map[string]any{"verified": a.Verified}
		for k, v := range map[string]string{"model": a.Model, "model_provider": a.ModelProvider, "model_version": a.ModelVersion,
			"tool_manifest": a.ToolManifest, "tool_name": a.ToolName, "sandbox_profile": a.SandboxProfile,
			"broker": a.Broker, "policy_hash": a.PolicyHash, "code_digest": a.CodeDigest} {
			if v != "" {
				att[k] = v
			}
		}
		doc["attestation"] = att
	}
	return doc
}
