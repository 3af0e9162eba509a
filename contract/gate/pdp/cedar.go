package pdp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/policysource"
)

// Cedar entity types of the ztlog input mapping (input.md, "Cedar").
const (
	CedarAgent    = types.EntityType("ZT::Agent")
	CedarAction   = types.EntityType("ZT::Action")
	CedarResource = types.EntityType("ZT::Resource")
)

// Cedar annotations that name a policy's reason.
const (
	cedarCodeAnnotation    = "code"
	cedarMessageAnnotation = "message"
	// cedarAssuranceAnnotation on a permit policy: the assurance level of
	// the allows it determines ("sequenced" or "witnessed").
	cedarAssuranceAnnotation = "assurance"
)

type cedarPolicy struct {
	version  Version
	set      *cedar.PolicySet
	entities types.EntityMap
	codes    map[cedar.PolicyID]entry.Reason
	// witnessed are the permit policies annotated @assurance("witnessed").
	witnessed map[cedar.PolicyID]bool
}

// LoadCedar loads a Cedar policy from a directory: every *.cedar file (in
// name order) and an optional entities.json (Cedar JSON entities). A policy
// may carry @id("...") (its id in reasons), @code("...") and
// @message("...") (the reason it gives when it determines a decision).
// It is CollectCedar, then Compile.
func LoadCedar(_ context.Context, dir, revision string) (Policy, error) {
	src, err := CollectCedar(dir)
	if err != nil {
		return nil, err
	}
	return compileCedar(src, revision, dir)
}

// CollectCedar reads the files a Cedar policy directory consists of,
// exactly as they are: the *.cedar files and entities.json at its top
// level, under their names. The engine reads no schema (cedar-go does not
// validate against one), so none is collected.
func CollectCedar(dir string) (*policysource.Source, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policy: cedar: %w", err)
	}
	src := &policysource.Source{Engine: "cedar", Files: map[string][]byte{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".cedar") || name == "entities.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		src.Files[name] = b
	}
	if len(src.Files) == 0 {
		return nil, fmt.Errorf("policy: cedar %s: no .cedar policies", dir)
	}
	if err := src.Check(); err != nil {
		return nil, fmt.Errorf("policy: cedar %s: %w", dir, err)
	}
	return src, nil
}

// compileCedar compiles the collected files; origin names them in errors
// and in the version's Source.
func compileCedar(src *policysource.Source, revision, origin string) (Policy, error) {
	set := cedar.NewPolicySet()
	codes := map[cedar.PolicyID]entry.Reason{}
	witnessed := map[cedar.PolicyID]bool{}
	var texts []string
	entities := types.EntityMap{}
	for _, name := range src.Paths() {
		b := src.Files[name]
		path := origin + "/" + name
		switch {
		case strings.Contains(name, "/"):
			return nil, fmt.Errorf("policy: cedar %s: the engine reads files at the top level only", path)
		case strings.HasSuffix(name, ".cedar"):
			list, err := cedar.NewPolicyListFromBytes(name, b)
			if err != nil {
				return nil, fmt.Errorf("policy: cedar %s does not parse: %w", path, err)
			}
			for i, p := range list {
				id := cedar.PolicyID(fmt.Sprintf("%s:%d", name, i))
				ann := p.Annotations()
				if v, ok := ann["id"]; ok && v != "" {
					id = cedar.PolicyID(v)
				}
				if !set.Add(id, p) {
					return nil, fmt.Errorf("policy: cedar %s: policy id %q is used twice", path, id)
				}
				if v, ok := ann[cedarAssuranceAnnotation]; ok {
					level, err := ParseAssurance(string(v))
					if err != nil {
						return nil, fmt.Errorf("policy: cedar %s: policy %s: @%w", path, id, err)
					}
					if p.Effect() != cedar.Permit {
						return nil, fmt.Errorf("policy: cedar %s: policy %s: @assurance applies to permit policies only", path, id)
					}
					witnessed[id] = level == Witnessed
				}
				code := string(ann[cedarCodeAnnotation])
				if code == "" {
					if p.Effect() == cedar.Permit {
						code = "policy.allow"
					} else {
						code = "policy.forbid"
					}
				}
				msg := string(ann[cedarMessageAnnotation])
				if msg == "" {
					msg = fmt.Sprintf("Cedar policy %s", id)
				}
				codes[id] = entry.Reason{Code: code, Message: msg}
				texts = append(texts, string(p.MarshalCedar()))
			}
		case name == "entities.json":
			if err := json.Unmarshal(b, &entities); err != nil {
				return nil, fmt.Errorf("policy: cedar %s: %w", path, err)
			}
		default:
			return nil, fmt.Errorf("policy: cedar %s: not a file the engine reads (*.cedar, entities.json)", path)
		}
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("policy: cedar %s: no .cedar policies", origin)
	}
	hash, err := cedarHash(texts, entities)
	if err != nil {
		return nil, err
	}
	return &cedarPolicy{
		version:  Version{Engine: "cedar", Hash: hash, Revision: revision, SourceDigest: src.Digest(), Source: origin, Content: src},
		set:      set,
		entities: entities,
		codes:    codes, witnessed: witnessed,
	}, nil
}

// cedarHash is the Cedar policy hash: the digest of the JCS object
//
//	{"engine":"cedar","policies":[<each policy as cedar-go prints it from
//	  its syntax tree (no comments, canonical layout), sorted>],
//	 "entities":<the entities, as canonical JSON>}
func cedarHash(texts []string, entities types.EntityMap) (string, error) {
	sort.Strings(texts)
	ej, err := json.Marshal(entities)
	if err != nil {
		return "", err
	}
	var ev any
	if err := json.Unmarshal(ej, &ev); err != nil {
		return "", err
	}
	if list, ok := ev.([]any); ok {
		// Entity order in the file carries no meaning.
		sort.Slice(list, func(i, j int) bool {
			a, _ := json.Marshal(list[i])
			b, _ := json.Marshal(list[j])
			return bytes.Compare(a, b) < 0
		})
	}
	return jcsDigest(map[string]any{"engine": "cedar", "policies": texts, "entities": ev})
}

func (p *cedarPolicy) Version() Version { return p.version }

// requestEntities serves the request's principal and the static entities.
type requestEntities struct {
	principal types.Entity
	static    types.EntityMap
}

func (r requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	if uid == r.principal.UID {
		// The request's attributes are authoritative; the groups an
		// entities file puts the agent in still hold (a forbid on
		// principal in ZT::Group::"quarantined" must fire).
		p := r.principal
		if st, ok := r.static.Get(uid); ok {
			p.Parents = st.Parents
		}
		return p, true
	}
	return r.static.Get(uid)
}

func (p *cedarPolicy) Evaluate(ctx context.Context, in *Input) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	req, principal := in.CedarRequest()
	dec, diag := p.set.IsAuthorized(requestEntities{principal: principal, static: p.entities}, req)
	if len(diag.Errors) > 0 {
		// Cedar skips a policy whose evaluation fails; a skipped forbid
		// could turn a deny into an allow, so any error is a deny.
		var msgs []string
		for _, e := range diag.Errors {
			msgs = append(msgs, e.String())
		}
		return Decision{}, fmt.Errorf("cedar evaluation errors: %s", strings.Join(msgs, "; "))
	}
	if dec == cedar.Allow {
		var ids []string
		level := Sequenced
		for _, r := range diag.Reasons {
			ids = append(ids, string(r.PolicyID))
			// The strongest level among the permits that apply.
			if p.witnessed[r.PolicyID] {
				level = Witnessed
			}
		}
		sort.Strings(ids)
		return Decision{Allow: true, Reasons: []entry.Reason{{Code: "policy.allow", Message: "allowed by Cedar policy " + strings.Join(ids, ", ")}}, Assurance: level}, nil
	}
	seen := map[string]bool{}
	var reasons []entry.Reason
	for _, r := range diag.Reasons {
		rs := p.codes[r.PolicyID]
		if !seen[rs.Code] {
			seen[rs.Code] = true
			reasons = append(reasons, rs)
		}
	}
	sort.SliceStable(reasons, func(i, j int) bool { return reasons[i].Code < reasons[j].Code })
	return Decision{Reasons: reasons}, nil
}

// CedarRequest maps the input onto a Cedar request and the principal
// entity (input.md, "Cedar").
func (in *Input) CedarRequest() (types.Request, types.Entity) {
	str := func(s string) types.Value { return types.String(s) }
	strSet := func(ss []string) types.Value {
		vs := make([]types.Value, len(ss))
		for i, s := range ss {
			vs[i] = types.String(s)
		}
		return types.NewSet(vs...)
	}
	labels := types.RecordMap{}
	for k, v := range in.Actor.Labels {
		labels[types.String(k)] = types.String(v)
	}
	principalUID := types.NewEntityUID(CedarAgent, types.String(in.Actor.ID))
	principal := types.Entity{UID: principalUID, Attributes: types.NewRecord(types.RecordMap{
		"id": str(in.Actor.ID), "trust_domain": str(in.Actor.TrustDomain), "path": str(in.Actor.Path),
		"status": str(in.Actor.Status), "owner": str(in.Actor.Owner), "brokers": strSet(in.Actor.Brokers),
		"labels": types.NewRecord(labels),
	})}
	findings := make([]types.Value, len(in.Findings))
	types_ := make([]string, 0, len(in.Findings))
	for i, f := range in.Findings {
		findings[i] = types.NewRecord(types.RecordMap{"type": str(f.Type), "rule": str(f.Rule), "arg": str(f.Arg), "offset": types.Long(f.Offset), "length": types.Long(f.Length)})
		types_ = append(types_, f.Type)
	}
	user := types.RecordMap{"issuer": str(""), "subject": str(""), "scopes": strSet(nil)}
	if u := in.User; u != nil {
		user = types.RecordMap{"issuer": str(u.Issuer), "subject": str(u.Subject), "scopes": strSet(u.Scopes)}
	}
	att := Attestation{}
	if in.Attestation != nil {
		att = *in.Attestation
	}
	context := types.NewRecord(types.RecordMap{
		"action": str(in.Action), "resource": str(in.Resource), "args_digest": str(in.ArgsDigest), "broker": str(in.Broker),
		"findings": types.NewSet(findings...), "finding_types": strSet(types_), "finding_count": types.Long(len(in.Findings)),
		"has_user": types.Boolean(in.User != nil), "user": types.NewRecord(user),
		"attestation": types.NewRecord(types.RecordMap{
			"present": types.Boolean(in.Attestation != nil), "verified": types.Boolean(att.Verified), "model": str(att.Model),
			"model_provider": str(att.ModelProvider), "model_version": str(att.ModelVersion),
			"tool_manifest": str(att.ToolManifest), "tool_name": str(att.ToolName), "sandbox_profile": str(att.SandboxProfile), "broker": str(att.Broker),
			"policy_hash": str(att.PolicyHash), "code_digest": str(att.CodeDigest),
		}),
		"time": str(in.Time), "correlation_id": str(in.CorrelationID),
	})
	return types.Request{
		Principal: principalUID,
		Action:    types.NewEntityUID(CedarAction, types.String(in.Action)),
		Resource:  types.NewEntityUID(CedarResource, types.String(in.Resource)),
		Context:   context,
	}, principal
}
