package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/identity"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/reasons"
)

// Reason codes of attestations.
const (
	// ReasonAttestationInvalid: the attestation sent does not verify, or
	// does not match the request (broker, sandbox).
	ReasonAttestationInvalid = reasons.AttestationInvalid
	// ReasonPolicyMismatch: the agent attested that it expects another
	// policy version than the one that decided.
	ReasonPolicyMismatch = reasons.PolicyMismatch
)

// AttestationSkew is the clock skew tolerated on an attestation's validity
// window.
const AttestationSkew = 30 * time.Second

// attestation is a verified runtime context.
type attestation struct {
	input  *pdp.Attestation
	claims map[string]string
	chain  []string
	// policyHash is the policy hash the agent expects ("" if none).
	policyHash string
}

// checkAttestation verifies the request's runtime-context attestation
// (attest/attest.md): the signer chain against the trust bundle now, the
// signer is the authenticated actor, the subject is this action's digest,
// the validity window holds, and the broker and sandbox it names are the
// request's. A signer chain that verified before is not verified again
// while the trust bundle's authorities and every certificate's validity
// still hold (attest.ChainCache). It returns the verified claims, or the reason the request is
// denied. The chain is the request's attestation_chain, else the caller's
// mutual-TLS chain.
func (g *Gate) checkAttestation(ctx context.Context, req *request, caller *identity.Caller, digest, broker string, now time.Time) (*attestation, *entry.Reason) {
	invalid := func(format string, a ...any) *entry.Reason {
		return &entry.Reason{Code: ReasonAttestationInvalid, Message: clean(fmt.Sprintf(format, a...), 1024)}
	}
	if g.cfg.Bundles == nil {
		return nil, invalid("this service has no trust bundle to verify attestations with")
	}
	var chain [][]byte
	var err error
	switch {
	case len(req.attestationChain) > 0:
		if chain, err = attest.DecodeChain(req.attestationChain); err != nil {
			return nil, invalid("%v", err)
		}
	case len(req.peerChain) > 0:
		chain = req.peerChain
	default:
		return nil, invalid("no signer chain: send attestation_chain, or call with the signing X.509-SVID over mutual TLS")
	}
	p, _, err := g.chains.VerifyRuntimeContext(ctx, req.rawEnvelope, chain, g.cfg.Bundles,
		attest.Expect{Now: now, Signer: caller.ID, ActionDigest: digest, Skew: AttestationSkew})
	if err != nil {
		return nil, invalid("%v", err)
	}
	if p.Broker != "" && p.Broker != broker {
		return nil, invalid("the attestation names broker %s, the request is for %s", p.Broker, broker)
	}
	if s := p.Sandbox; s != nil {
		switch {
		case req.manifest == nil:
			return nil, invalid("the attestation names sandbox capabilities %s, the request carries no capability manifest", s.Capabilities)
		case s.Capabilities != req.capabilitiesDigest:
			return nil, invalid("the attestation names sandbox capabilities %s, the request's manifest is %s", s.Capabilities, req.capabilitiesDigest)
		case s.Profile != req.manifest.Profile:
			return nil, invalid("the attestation names sandbox profile %q, the manifest's is %q", s.Profile, req.manifest.Profile)
		}
	}
	a := &attestation{policyHash: p.PolicyHash, chain: attest.EncodeChain(chain),
		input: &pdp.Attestation{Verified: true, Model: p.Model.Name, ModelProvider: p.Model.Provider, ModelVersion: p.Model.Version,
			Broker: p.Broker, PolicyHash: p.PolicyHash, CodeDigest: p.Code.Digest}}
	if t := p.Tool; t != nil {
		a.input.ToolManifest, a.input.ToolName = t.ManifestDigest, t.Name
	}
	if s := p.Sandbox; s != nil {
		a.input.SandboxProfile = s.Profile
	}
	a.claims = attest.RuntimeContextClaims(caller.ID, p)
	return a, nil
}
