package pdp

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type tableCase struct {
	Name    string          `json:"name"`
	Input   json.RawMessage `json:"input"`
	Effect  string          `json:"effect"`
	Reasons []string        `json:"reasons"`
}

type table struct {
	Base  json.RawMessage `json:"base"`
	Cases []tableCase     `json:"cases"`
}

// merge overlays patch onto base (objects merge, everything else replaces).
func merge(base, patch any) any {
	b, ok1 := base.(map[string]any)
	p, ok2 := patch.(map[string]any)
	if !ok1 || !ok2 {
		return patch
	}
	out := map[string]any{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range p {
		out[k] = merge(out[k], v)
	}
	return out
}

func loadTable(t testing.TB) ([]string, []*Input, []tableCase) {
	raw, err := os.ReadFile(filepath.Join(examples, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tb table
	if err := json.Unmarshal(raw, &tb); err != nil {
		t.Fatal(err)
	}
	var base any
	json.Unmarshal(tb.Base, &base)
	var names []string
	var inputs []*Input
	for _, c := range tb.Cases {
		var patch any
		json.Unmarshal(c.Input, &patch)
		js, _ := json.Marshal(merge(base, patch))
		var in Input
		dec := json.NewDecoder(strings.NewReader(string(js)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("case %q: %v", c.Name, err)
		}
		names = append(names, c.Name)
		inputs = append(inputs, &in)
	}
	return names, inputs, tb.Cases
}

// TestSharedTable runs one table of cases against both engines' example
// policies: same effect, same reason codes.
func TestSharedTable(t *testing.T) {
	_, inputs, cases := loadTable(t)
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	allows, denies := 0, 0
	for _, engine := range []string{"opa", "cedar"} {
		p, err := Load(context.Background(), engine, filepath.Join(examples, engine), "")
		if err != nil {
			t.Fatal(err)
		}
		pdp := NewPDP(p, time.Second)
		for i, c := range cases {
			d, _, err := pdp.Decide(context.Background(), inputs[i])
			if err != nil {
				t.Errorf("%s %q: %v", engine, c.Name, err)
				continue
			}
			effect := map[bool]string{true: "allow", false: "deny"}[d.Allow]
			var codes []string
			for _, r := range d.Reasons {
				codes = append(codes, r.Code)
			}
			if effect != c.Effect || !reflect.DeepEqual(codes, c.Reasons) {
				t.Errorf("%s %q: %s %v, want %s %v", engine, c.Name, effect, codes, c.Effect, c.Reasons)
			}
			if engine == "opa" {
				if d.Allow {
					allows++
				} else {
					denies++
				}
			}
		}
	}
	if allows < 5 || denies < 10 {
		t.Fatalf("the table has %d allows and %d denies", allows, denies)
	}
}
