package entry

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const actionVectors = "../../testdata/action-digest/vectors.json"

// actionVector is one line of testdata/action-digest/vectors.json: the
// action, the exact JCS bytes that are hashed, and the digest.
type actionVector struct {
	Name      string `json:"name"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	Args      string `json:"args_digest"`
	Broker    string `json:"broker"`
	Caps      string `json:"capabilities_digest,omitempty"`
	Canonical string `json:"canonical"`
	Digest    string `json:"digest"`
}

var actionCases = []actionVector{
	{Name: "full", Actor: "spiffe://dev.ztlog.local/agent/demo", Action: "demo.echo", Resource: "demo://hello",
		Args: "sha256:" + strings.Repeat("ab", 32), Broker: "spiffe://dev.ztlog.local/broker/demo"},
	{Name: "no-args-no-broker", Actor: "spiffe://dev.ztlog.local/agent/demo", Action: "aws.ec2.terminate_instances", Resource: "i-demo"},
	{Name: "escapes", Actor: "spiffe://dev.ztlog.local/agent/demo", Action: "demo.echo", Resource: "i-demo <&> \"quoted\" é \u200d"},
	{Name: "capabilities", Actor: "spiffe://dev.ztlog.local/agent/demo", Action: "demo.echo", Resource: "demo://hello",
		Args: "sha256:" + strings.Repeat("ab", 32), Broker: "spiffe://dev.ztlog.local/broker/demo", Caps: "sha256:" + strings.Repeat("0c", 32)},
}

func TestActionDigestVectors(t *testing.T) {
	if *update {
		var out []actionVector
		for _, c := range actionCases {
			m := map[string]any{"v": 1, "actor": c.Actor, "action": c.Action, "resource": c.Resource, "args_digest": c.Args, "broker": c.Broker}
			if c.Caps != "" {
				m["capabilities_digest"] = c.Caps
			}
			b, err := canonical(m)
			if err != nil {
				t.Fatal(err)
			}
			c.Canonical = string(b)
			c.Digest = Digest(b)
			out = append(out, c)
		}
		js, _ := json.MarshalIndent(out, "", "  ")
		os.MkdirAll(filepath.Dir(actionVectors), 0o755)
		if err := os.WriteFile(actionVectors, append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(actionVectors)
	if err != nil {
		t.Fatal(err)
	}
	var vs []actionVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(actionCases) {
		t.Fatalf("%d vectors, want %d (regenerate with -update)", len(vs), len(actionCases))
	}
	for _, v := range vs {
		got, err := ActionDigest(Action{Actor: v.Actor, Action: v.Action, Resource: v.Resource, ArgsDigest: v.Args, Broker: v.Broker, CapabilitiesDigest: v.Caps})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if got != v.Digest {
			t.Errorf("%s: ActionDigest = %s, vector says %s", v.Name, got, v.Digest)
		}
		// The vector's canonical bytes hash to its digest: a second
		// implementation can check its JCS output against them.
		if Digest([]byte(v.Canonical)) != v.Digest {
			t.Errorf("%s: canonical bytes do not hash to the digest", v.Name)
		}
	}
}

func TestActionDigestBindsEveryField(t *testing.T) {
	base := Action{Actor: "spiffe://td/agent/a", Action: "x.y", Resource: "r", ArgsDigest: "sha256:" + strings.Repeat("00", 32), Broker: "spiffe://td/broker/b"}
	d0, err := ActionDigest(base)
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Action){
		"actor":    func(a *Action) { a.Actor = "spiffe://td/agent/b" },
		"action":   func(a *Action) { a.Action = "x.z" },
		"resource": func(a *Action) { a.Resource = "r2" },
		"args":     func(a *Action) { a.ArgsDigest = "" },
		"broker":   func(a *Action) { a.Broker = "" },
		"caps":     func(a *Action) { a.CapabilitiesDigest = "sha256:" + strings.Repeat("0c", 32) },
	} {
		a := base
		mod(&a)
		d, err := ActionDigest(a)
		if err != nil {
			t.Fatal(err)
		}
		if d == d0 {
			t.Errorf("changing %s does not change the digest", name)
		}
	}
	for name, a := range map[string]Action{
		"actor":               {Actor: "agent", Action: "a", Resource: "r"},
		"args":                {Actor: "spiffe://td/a", Action: "a", Resource: "r", ArgsDigest: "md5:00"},
		"broker":              {Actor: "spiffe://td/a", Action: "a", Resource: "r", Broker: "https://x"},
		"action":              {Actor: "spiffe://td/a", Resource: "r"},
		"capabilities_digest": {Actor: "spiffe://td/a", Action: "a", Resource: "r", CapabilitiesDigest: "sha256:00"},
	} {
		_, err := ActionDigest(a)
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, name) {
			t.Errorf("%s: err = %v, want a field error naming it", name, err)
		}
	}
}

// actionObjectReference is the action object as the definition builds it:
// a map through canonical (encoding/json, then RFC 8785).
func actionObjectReference(t testing.TB, a Action) []byte {
	m := map[string]any{"v": 1, "actor": a.Actor, "action": a.Action, "resource": a.Resource, "args_digest": a.ArgsDigest, "broker": a.Broker}
	if a.CapabilitiesDigest != "" {
		m["capabilities_digest"] = a.CapabilitiesDigest
	}
	b, err := canonical(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The direct encoding of the action object writes exactly the bytes of the
// definition, for text that JSON must escape, non-ASCII text and the
// optional member.
func TestActionObjectDirectEncoding(t *testing.T) {
	for _, a := range []Action{
		{Actor: "spiffe://td/agent/a", Action: "x.y", Resource: "r"},
		{Actor: "spiffe://td/agent/a", Action: "x.y", Resource: `q"uote\back<html>&amp;` + "\u2028\u00e9\U0001F600\x7f", Broker: "spiffe://td/broker/b",
			ArgsDigest: "sha256:" + strings.Repeat("ab", 32), CapabilitiesDigest: "sha256:" + strings.Repeat("0c", 32)},
		{Actor: "spiffe://td/agent/a", Action: "x.y", Resource: "tab\tnl\ncr\rctl\x01"},
	} {
		got, ok := appendActionObject(nil, a)
		if !ok {
			t.Fatalf("%+v: not encoded directly", a)
		}
		if want := actionObjectReference(t, a); string(got) != string(want) {
			t.Errorf("direct encoding\n%s\nthe definition\n%s", got, want)
		}
	}
	if _, ok := appendActionObject(nil, Action{Actor: "spiffe://td/a", Action: "a", Resource: "\xff"}); ok {
		t.Error("invalid UTF-8 was encoded directly; the definition substitutes U+FFFD")
	}
}

func FuzzActionObjectDirectEncoding(f *testing.F) {
	f.Add("spiffe://td/agent/a", "x.y", "r", "", "", "")
	f.Add("spiffe://td/agent/a", "x.y", "q\"\\<\u2028\x01é", "sha256:00", "spiffe://td/b", "sha256:0c")
	f.Fuzz(func(t *testing.T, actor, action, resource, args, broker, caps string) {
		a := Action{Actor: actor, Action: action, Resource: resource, ArgsDigest: args, Broker: broker, CapabilitiesDigest: caps}
		got, ok := appendActionObject(nil, a)
		if !ok {
			return
		}
		if want := actionObjectReference(t, a); string(got) != string(want) {
			t.Fatalf("direct encoding\n%q\nthe definition\n%q", got, want)
		}
	})
}
