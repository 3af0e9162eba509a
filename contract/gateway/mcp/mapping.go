package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/internal/text"
)

// MaxMappingSize is the largest mapping file ParseMapping reads.
const MaxMappingSize = 1 << 20

// serverNamePattern is what a server name may be: one segment of an action
// name (no dots, so that mcp.tool.*.echo matches exactly one server).
var serverNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// toolNamePattern is what a tool name must be to become an action name
// (the contract's action names: letters, digits and _ . : / -).
var toolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$`)

// Action is the action name of a call of tool on server:
// "mcp.tool.<server>.<tool>", the Go SDK's client.MCPServerToolAction.
func Action(server, tool string) string { return client.MCPServerToolAction(server, tool) }

// Mapping is the gateway's configuration file (gateway.md): the server
// name, where each tool's resource comes from, and which tools are shown.
type Mapping struct {
	// Server names the upstream server in action names (default: the
	// name the upstream gives in its initialize answer, see ServerName).
	Server string `json:"server,omitempty"`
	// Tools maps a tool name to how its calls are mapped.
	Tools map[string]ToolMapping `json:"tools,omitempty"`
	// Expose, when present, lists action patterns ("*" matches any
	// string, as in the example policy); tools whose action matches none
	// are hidden from tools/list and cannot be called through the gateway.
	Expose []string `json:"expose,omitempty"`
	// FilterTools, when "policy", also hides from tools/list the tools the
	// policy in force can never allow for the gateway's agent (POST
	// /v1/actions/possible). Hidden tools stay callable: their calls are
	// decided and denied like any other. Connected clients are told
	// (tools/list_changed) when a policy change hides other tools
	// (Config.PolicyWatchInterval). Empty (the default): no policy
	// filtering.
	FilterTools string `json:"filter_tools,omitempty"`
}

// FiltersByPolicy reports whether tools/list is filtered by policy.
func (m *Mapping) FiltersByPolicy() bool { return m != nil && m.FilterTools == FilterPolicy }

// ToolMapping maps the calls of one tool.
type ToolMapping struct {
	// Resource is a JSON pointer (RFC 6901) into the call's arguments;
	// the value there (a string, or a number or boolean as its JSON text)
	// is the resource decided on. Empty: the server name.
	Resource string `json:"resource,omitempty"`
}

// ParseMapping reads a mapping file: one JSON object, no unknown or
// duplicate members, valid names, pointers and patterns.
func ParseMapping(b []byte) (*Mapping, error) {
	if len(b) > MaxMappingSize {
		return nil, fmt.Errorf("mapping: larger than %d bytes", MaxMappingSize)
	}
	if err := noDuplicates(b); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	var m Mapping
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("mapping: %w (want {\"server\": NAME, \"tools\": {TOOL: {\"resource\": \"/json/pointer\"}}, \"expose\": [PATTERN], \"filter_tools\": \"policy\"})", err)
	}
	if dec.More() {
		return nil, errors.New("mapping: trailing data after the object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the names, pointers and patterns.
func (m *Mapping) Validate() error {
	if m.Server != "" && !serverNamePattern.MatchString(m.Server) {
		return fmt.Errorf("mapping: server %q: want 1 to 64 letters, digits, _ or - (it is one segment of the action name)", text.Cut(m.Server, 80))
	}
	for name, t := range m.Tools {
		if !toolNamePattern.MatchString(name) {
			return fmt.Errorf("mapping: tools: %q is not a tool name an action can carry (letters, digits and _ . : / -, at most 128)", text.Cut(name, 80))
		}
		if t.Resource != "" {
			if _, err := parsePointer(t.Resource); err != nil {
				return fmt.Errorf("mapping: tools.%s.resource: %w", name, err)
			}
		}
	}
	if m.FilterTools != "" && m.FilterTools != FilterPolicy {
		return fmt.Errorf("mapping: filter_tools: %q: want %q (hide the tools the policy can never allow) or leave it out", text.Cut(m.FilterTools, 80), FilterPolicy)
	}
	for i, p := range m.Expose {
		if p == "" || !strings.HasPrefix(p, "mcp.tool.") {
			return fmt.Errorf("mapping: expose[%d]: %q: want an action pattern starting with mcp.tool. (e.g. mcp.tool.*.echo)", i, text.Cut(p, 80))
		}
		if strings.ContainsAny(p, "[]?\\") {
			return fmt.Errorf("mapping: expose[%d]: %q: only * is a wildcard", i, text.Cut(p, 80))
		}
	}
	return nil
}

// Exposed reports whether the tool with this action is shown (always, when
// Expose is absent).
func (m *Mapping) Exposed(action string) bool {
	if m == nil || m.Expose == nil {
		return true
	}
	return slices.ContainsFunc(m.Expose, func(p string) bool { return globMatch(p, action) })
}

// globMatch matches s against pattern p in which "*" matches any string
// (dots included, as the example policy's glob.match and Cedar's like do).
func globMatch(p, s string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// ResourceError is a call whose resource cannot be taken from its
// arguments; the gateway refuses it without deciding or forwarding.
type ResourceError struct {
	Tool, Pointer, Reason string
}

func (e *ResourceError) Error() string {
	return fmt.Sprintf("the resource of %s is the argument at %s, which %s", e.Tool, e.Pointer, e.Reason)
}

// Resource is the resource of a call of tool with the raw JSON arguments:
// the value at the tool's pointer, or server when the tool has none.
func (m *Mapping) Resource(server, tool string, args json.RawMessage) (string, error) {
	var ptr string
	if m != nil {
		ptr = m.Tools[tool].Resource
	}
	if ptr == "" {
		return server, nil
	}
	tokens, err := parsePointer(ptr)
	if err != nil {
		return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	var v any
	if len(bytes.TrimSpace(args)) == 0 {
		v = map[string]any{}
	} else if err := dec.Decode(&v); err != nil {
		return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "cannot be read: the arguments are not JSON"}
	}
	for _, tok := range tokens {
		switch x := v.(type) {
		case map[string]any:
			val, ok := x[tok]
			if !ok {
				return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "is missing"}
			}
			v = val
		case []any:
			i, err := arrayIndex(tok)
			if err != nil || i >= len(x) {
				return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "is missing (no such array element)"}
			}
			v = x[i]
		default:
			return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "is missing (a scalar has no members)"}
		}
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "is an empty string"}
		}
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "is null"}
	default:
		return "", &ResourceError{Tool: tool, Pointer: ptr, Reason: "is an object or array, not a string or number"}
	}
}

// parsePointer splits an RFC 6901 JSON pointer into its unescaped
// reference tokens. The empty pointer (the whole document) is refused: a
// resource is one argument.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("empty pointer (a resource is one argument, e.g. \"/path\")")
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON pointer (RFC 6901): it starts with '/'", text.Cut(p, 80))
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("%q: '~' must be followed by 0 or 1 (RFC 6901 escapes ~0 and ~1)", text.Cut(p, 80))
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// arrayIndex reads an RFC 6901 array index: digits, no leading zero.
func arrayIndex(tok string) (int, error) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, errors.New("not an array index")
	}
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, errors.New("not an array index")
		}
	}
	return strconv.Atoi(tok)
}

// ServerName derives a server name from the name an upstream gives in its
// initialize answer: the part after the last '/', lowercased, every
// character outside letters, digits, _ and - replaced by '-'
// ("mcp-servers/everything" -> "everything"). Empty input gives "mcp".
func ServerName(implementation string) string {
	if i := strings.LastIndexByte(implementation, '/'); i >= 0 {
		implementation = implementation[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(implementation) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
		if b.Len() == 64 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return "mcp"
	}
	return s
}

// noDuplicates refuses a JSON text with a duplicate object member name.
func noDuplicates(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func() error
	walk = func() error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := t.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				ks, _ := k.(string)
				if seen[ks] {
					return fmt.Errorf("duplicate member %q", text.Cut(ks, 80))
				}
				seen[ks] = true
				if err := walk(); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("not JSON: %w", err)
		}
		return err
	}
	return nil
}
