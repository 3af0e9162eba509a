package a2a

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/zt-infra/ztlog/contract/client"
)

// The A2A (protocol v0.3) JSON-RPC methods the gate handles.
const (
	// MethodSend and MethodStream send a message to the agent: each is
	// decided before it is forwarded.
	MethodSend   = "message/send"
	MethodStream = "message/stream"
)

// passThrough are the methods forwarded without a decision: they read or
// stop tasks that a decided message started, and start no new work. Every
// other method is refused (ErrMethodNotGated).
var passThrough = map[string]bool{
	"tasks/get":                          true,
	"tasks/cancel":                       true,
	"tasks/resubscribe":                  true,
	"agent/getAuthenticatedExtendedCard": true,
}

// SkillMetadataKey is the member of params.message.metadata that names the
// skill a message is for (one of the agent card's skill ids).
const SkillMetadataKey = "skill"

// Errors of Map, each a JSON-RPC error the client gets; nothing is decided
// or forwarded.
var (
	// ErrMethodNotGated: a method the gate neither decides nor passes.
	ErrMethodNotGated = errors.New("method not gated")
	// ErrInvalidParams: params is not a message the gate can map.
	ErrInvalidParams = errors.New("invalid params")
)

// Card is the part of an A2A agent card the gate reads.
type Card struct {
	Name   string  `json:"name"`
	URL    string  `json:"url"`
	Skills []Skill `json:"skills"`
	// Capabilities.Streaming says whether message/stream is served.
	Capabilities struct {
		Streaming bool `json:"streaming"`
	} `json:"capabilities"`
}

// Skill is one skill of an agent card.
type Skill struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Call is what one JSON-RPC request maps to.
type Call struct {
	// Gated is true for a message that must be decided; false for a
	// pass-through method.
	Gated bool
	// Action is "a2a.<agent>.<skill>", or client.A2AAction(agent)
	// ("a2a.<agent>.send_message") for a message that names no skill.
	Action string
	// Resource is the agent card's url: the agent the message goes to.
	Resource string
	// Skill is the skill named, "" if none.
	Skill string
	// Params are the call's params, sent as args for guardrail inspection
	// (never logged; their digest is).
	Params json.RawMessage
}

// AgentName turns an agent card's name into the action's agent segment:
// lower case, every run of characters other than a-z, 0-9, '_' and '-'
// becomes one '-', trimmed; "agent" if nothing is left.
func AgentName(cardName string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(cardName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return "agent"
	}
	if len(s) > 64 {
		s = strings.TrimRight(s[:64], "-")
	}
	return s
}

// Map maps a JSON-RPC method and its params, sent to the agent of card
// (named agent in actions), to a Call. It is pure: the mapping is specified
// in gateway.md and its vectors are in testdata/mapping.json.
func Map(card *Card, agent, method string, params json.RawMessage) (*Call, error) {
	switch {
	case passThrough[method]:
		return &Call{Resource: card.URL, Params: params}, nil
	case method != MethodSend && method != MethodStream:
		return nil, fmt.Errorf("%w: %q is not decided by the gate and is not a read of a decided task; it is refused", ErrMethodNotGated, cut(method))
	case method == MethodStream && !card.Capabilities.Streaming:
		return nil, fmt.Errorf("%w: the agent card does not declare streaming; use %s", ErrInvalidParams, MethodSend)
	}
	var p struct {
		Message *struct {
			Metadata map[string]json.RawMessage `json:"metadata"`
		} `json:"message"`
	}
	if !bytes.HasPrefix(bytes.TrimSpace(params), []byte("{")) {
		return nil, fmt.Errorf("%w: params must be an object {message, ...}", ErrInvalidParams)
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("%w: params: %w", ErrInvalidParams, err)
	}
	if p.Message == nil {
		return nil, fmt.Errorf("%w: params.message is required", ErrInvalidParams)
	}
	c := &Call{Gated: true, Resource: card.URL, Params: params, Action: client.A2AAction(agent)}
	raw, ok := p.Message.Metadata[SkillMetadataKey]
	if !ok {
		return c, nil
	}
	var skill string
	if err := json.Unmarshal(raw, &skill); err != nil {
		return nil, fmt.Errorf("%w: params.message.metadata.%s must be a string (a skill id of the agent card)", ErrInvalidParams, SkillMetadataKey)
	}
	for _, s := range card.Skills {
		if s.ID == skill && skill != "" {
			c.Skill, c.Action = skill, "a2a."+agent+"."+skill
			return c, nil
		}
	}
	ids := make([]string, len(card.Skills))
	for i, s := range card.Skills {
		ids[i] = s.ID
	}
	return nil, fmt.Errorf("%w: params.message.metadata.%s %q is not a skill of the agent (skills: %s)", ErrInvalidParams, SkillMetadataKey, cut(skill), strings.Join(ids, ", "))
}

func cut(s string) string {
	if len(s) <= 80 {
		return s
	}
	for i := 80; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "..."
		}
	}
	return ""
}
