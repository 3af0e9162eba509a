package attest

import (
	"strconv"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/internal/text"
)

// The claims of a committed statement (contract.Attestation.Claims) are a
// flat map derived from the verified predicate by exactly these functions:
// the decision path and POST /v1/results commit them, and auditors
// recompute them from the signed statement and compare, so the fields
// policy evaluated and readers see are the ones the signer signed. The
// mapping is specified in attest.md ("Claims in entries").

// RuntimeContextClaims are the claims of a runtime-context statement signed
// by signer.
func RuntimeContextClaims(signer spiffeid.ID, p *RuntimeContext) map[string]string {
	c := map[string]string{
		"signer":         signer.String(),
		"model.provider": p.Model.Provider,
		"model.name":     p.Model.Name,
		"code.digest":    p.Code.Digest,
		"issuedAt":       p.IssuedAt,
		"expiresAt":      p.ExpiresAt,
	}
	put := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	put("model.version", p.Model.Version)
	put("model.digest", p.Model.Digest)
	put("code.uri", p.Code.URI)
	put("broker", p.Broker)
	put("policyHash", p.PolicyHash)
	if t := p.Tool; t != nil {
		put("tool.manifestDigest", t.ManifestDigest)
		put("tool.name", t.Name)
		put("tool.version", t.Version)
	}
	if s := p.Sandbox; s != nil {
		put("sandbox.profile", s.Profile)
		put("sandbox.capabilities", s.Capabilities)
	}
	return c
}

// MaxClaimMessage bounds the error message claim of a broker result.
const MaxClaimMessage = 1024

// BrokerResultClaims are the claims of a broker-result statement signed by
// signer.
func BrokerResultClaims(signer spiffeid.ID, p *BrokerResult) map[string]string {
	c := map[string]string{
		"signer":               signer.String(),
		"started_at":           p.StartedAt,
		"finished_at":          p.FinishedAt,
		"stdout.digest":        p.Outputs.Stdout.Digest,
		"stdout.size":          strconv.FormatInt(p.Outputs.Stdout.Size, 10),
		"stderr.digest":        p.Outputs.Stderr.Digest,
		"stderr.size":          strconv.FormatInt(p.Outputs.Stderr.Size, 10),
		"sandbox.kind":         p.Sandbox.Kind,
		"sandbox.capabilities": p.Sandbox.Capabilities,
	}
	if p.Sandbox.Version != "" {
		c["sandbox.version"] = p.Sandbox.Version
	}
	if x := p.Exit; x != nil {
		if x.Signal != "" {
			c["exit.signal"] = x.Signal
		}
		if x.TimedOut {
			c["exit.timed_out"] = "true"
		}
	}
	if e := p.Error; e != nil {
		c["error.class"] = e.Class
		c["error.message"] = text.Prefix(e.Message, MaxClaimMessage)
	}
	return c
}
