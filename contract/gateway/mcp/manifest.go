package mcp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zt-infra/ztlog/contract"
)

// ManifestDigest is the tool manifest digest of an upstream's tools/list
// answer (gateway.md): "sha256:" and the lowercase hex SHA-256 of the RFC
// 8785 (JCS) form of {"tools":[...]}, the tools as the upstream listed them
// (every page) in the MCP JSON form, sorted by name. It is what the
// gateway attests as tool.manifestDigest with every call, so a changed
// tool — a new description, schema or annotation, a tool added or removed
// — changes the digest in the evidence.
func ManifestDigest(tools []*sdk.Tool) (string, error) {
	sorted := slices.Clone(tools)
	slices.SortStableFunc(sorted, func(a, b *sdk.Tool) int { return strings.Compare(a.Name, b.Name) })
	if sorted == nil {
		sorted = []*sdk.Tool{}
	}
	raw, err := json.Marshal(struct {
		Tools []*sdk.Tool `json:"tools"`
	}{sorted})
	if err != nil {
		return "", fmt.Errorf("tool manifest: %v", err)
	}
	c, err := contract.Canonicalize(raw)
	if err != nil {
		return "", fmt.Errorf("tool manifest: %v", err)
	}
	return contract.Digest(c), nil
}

// ManifestDigestJSON is ManifestDigest of a tools/list result given as JSON
// ({"tools":[...]}, as on the wire; other members are ignored).
func ManifestDigestJSON(listResult []byte) (string, error) {
	var r struct {
		Tools []*sdk.Tool `json:"tools"`
	}
	if err := json.Unmarshal(listResult, &r); err != nil {
		return "", fmt.Errorf("tools/list result: %v", err)
	}
	return ManifestDigest(r.Tools)
}
