package a2a

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type mappingVectors struct {
	Card    Card   `json:"card"`
	Agent   string `json:"agent"`
	Vectors []struct {
		Name     string          `json:"name"`
		Method   string          `json:"method"`
		Params   json.RawMessage `json:"params"`
		Gated    bool            `json:"gated"`
		Action   string          `json:"action"`
		Resource string          `json:"resource"`
		Skill    string          `json:"skill"`
		Error    string          `json:"error"`
		Message  string          `json:"message"`
	} `json:"vectors"`
}

func loadVectors(t testing.TB) *mappingVectors {
	b, err := os.ReadFile("testdata/mapping.json")
	if err != nil {
		t.Fatal(err)
	}
	var v mappingVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func TestMappingVectors(t *testing.T) {
	v := loadVectors(t)
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	sentinels := map[string]error{"invalid params": ErrInvalidParams, "method not gated": ErrMethodNotGated}
	for _, c := range v.Vectors {
		t.Run(c.Name, func(t *testing.T) {
			got, err := Map(&v.Card, v.Agent, c.Method, c.Params)
			if c.Error != "" {
				want, ok := sentinels[c.Error]
				if !ok {
					t.Fatalf("vector names unknown error %q", c.Error)
				}
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
				if !strings.Contains(err.Error(), c.Message) {
					t.Errorf("error %q does not contain %q", err, c.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Gated != c.Gated {
				t.Errorf("gated %v, want %v", got.Gated, c.Gated)
			}
			if got.Action != c.Action {
				t.Errorf("action %q, want %q", got.Action, c.Action)
			}
			if got.Resource != c.Resource {
				t.Errorf("resource %q, want %q", got.Resource, c.Resource)
			}
			if got.Skill != c.Skill {
				t.Errorf("skill %q, want %q", got.Skill, c.Skill)
			}
		})
	}
}

func TestStreamNeedsTheCardToDeclareIt(t *testing.T) {
	card := &Card{URL: "http://x/rpc"}
	_, err := Map(card, "a", MethodStream, json.RawMessage(`{"message":{}}`))
	if !errors.Is(err, ErrInvalidParams) {
		t.Errorf("stream to a card without streaming: %v", err)
	}
}

func TestAgentName(t *testing.T) {
	for in, want := range map[string]string{
		"Echo Agent":          "echo-agent",
		"  Travel  Planner!!": "travel-planner",
		"billing_v2":          "billing_v2",
		"***":                 "agent",
		"Ünïcode Bot":         "n-code-bot",
		"":                    "agent",
	} {
		if got := AgentName(in); got != want {
			t.Errorf("AgentName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := AgentName(strings.Repeat("a", 100)); len(got) != 64 {
		t.Errorf("long name: %d bytes, want 64", len(got))
	}
}

// FuzzMap: Map never panics, and a gated call's action is always
// a2a.<agent>. followed by a skill of the card or send_message.
func FuzzMap(f *testing.F) {
	v := loadVectors(f)
	for _, c := range v.Vectors {
		f.Add(c.Method, []byte(c.Params))
	}
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		c, err := Map(&v.Card, v.Agent, method, params)
		if err != nil {
			if !errors.Is(err, ErrInvalidParams) && !errors.Is(err, ErrMethodNotGated) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !c.Gated {
			return
		}
		switch c.Action {
		case "a2a.echo-agent.echo", "a2a.echo-agent.transfer", "a2a.echo-agent.send_message":
		default:
			t.Fatalf("action %q", c.Action)
		}
	})
}

func TestRPCFailed(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1,"result":{"kind":"message"}}`, false},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"x"}}`, true},
		{"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", false},
		{"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}\n\n", true},
		{`not json`, false},
	} {
		if got := rpcFailed([]byte(c.body)); got != c.want {
			t.Errorf("rpcFailed(%q) = %v, want %v", c.body, got, c.want)
		}
	}
}
