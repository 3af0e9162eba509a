// Package api holds the wire types of the adapter contract v1 — the
// request and response bodies of POST /v1/actions, POST /actions (the ZT
// JavaScript SDK's shape), POST /v1/agents — their strict decoder, and the
// OpenAPI 3.1 document (openapi.json, served at /v1/openapi.json) whose JSON
// Schemas describe exactly what the decoder accepts.
//
// Decoding is strict: a body is one JSON object of valid UTF-8, at most
// MaxBody bytes, with no unknown, duplicate or differently-cased member, and
// every member of the right type and form. Anything else is a *contract.Error
// naming the field, and nothing is decided or committed.
package api

import (
	_ "embed"
	"encoding/json"

	"github.com/zt-infra/ztlog/contract/capability"
	"github.com/zt-infra/ztlog/contract/entry"
)

// MaxBody is the largest request body accepted, in bytes (HTTP 413 above).
const MaxBody = 64 << 10

// OpenAPI is the OpenAPI 3.1 document of the contract.
//
//go:embed openapi.json
var OpenAPI []byte

// ActionRequest is the body of POST /v1/actions.
type ActionRequest struct {
	// Actor is optional; the authenticated SPIFFE ID is authoritative and a
	// different actor here is refused (and committed as a deny).
	Actor string `json:"actor,omitempty"`
	// Action is the action's name, e.g. "aws.ec2.terminate_instances".
	Action string `json:"action"`
	// Resource is what it acts on.
	Resource string `json:"resource"`
	// ArgsDigest is "sha256:<hex>" of the arguments; the values are never
	// logged. With Args it is computed (and, when also sent, must match).
	ArgsDigest string `json:"args_digest,omitempty"`
	// Args are argument values sent for guardrail inspection: a JSON
	// object. They are never stored or logged; their digest is the JCS
	// digest, and only the findings (type and position) are committed.
	Args json.RawMessage `json:"args,omitempty"`
	// Broker is the SPIFFE ID of the execution broker the receipt is for.
	Broker string `json:"broker,omitempty"`
	// Attestation is an optional DSSE envelope of the agent's runtime-context
	// statement (attest/attest.md); verified, then committed with the
	// decision. One that does not verify is a committed deny.
	Attestation *Envelope `json:"attestation,omitempty"`
	// AttestationChain is the attestation signer's X.509-SVID chain:
	// standard base64 DER, leaf first, 1 to 4 certificates. Without it, the
	// caller's mutual-TLS chain is used; an attestation with neither is a
	// committed deny.
	AttestationChain []string `json:"attestation_chain,omitempty"`
	// Capabilities is the capability manifest the work is to run under
	// (contract/capability/manifest.md); its digest becomes part of the
	// action digest, so the broker enforces exactly this manifest.
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
	// Manifest and CapabilitiesDigest are Capabilities parsed and its
	// digest, set by the decoder.
	Manifest           *capability.Manifest `json:"-"`
	CapabilitiesDigest string               `json:"-"`
	// CorrelationID is optional; X-Correlation-ID, when sent, must match.
	CorrelationID string `json:"correlation_id,omitempty"`
}

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// Reason explains a decision.
type Reason = entry.Reason

// Policy names the policy version that decided.
type Policy = entry.PolicyRef

// LogRef locates the committed decision in the log.
type LogRef struct {
	// Origin is the log's origin.
	Origin string `json:"origin"`
	// Index is the decision entry's index.
	Index uint64 `json:"index"`
	// LeafHash is the entry's RFC 6962 leaf hash, standard base64.
	LeafHash string `json:"leaf_hash"`
	// EntryURL is where the entry and its inclusion proof can be fetched
	// once a checkpoint covers it.
	EntryURL string `json:"entry_url"`
}

// ActionResponse is the answer of POST /v1/actions: 200 for an allow, 403
// for a deny. Both are committed before they are sent.
type ActionResponse struct {
	Decision      string   `json:"decision"`
	Reasons       []Reason `json:"reasons"`
	Actor         string   `json:"actor"`
	Action        string   `json:"action"`
	Resource      string   `json:"resource"`
	ActionDigest  string   `json:"action_digest"`
	Policy        Policy   `json:"policy"`
	Log           LogRef   `json:"log"`
	CorrelationID string   `json:"correlation_id"`
	// Findings are the guardrail findings over args (type and position).
	Findings []Finding `json:"findings,omitempty"`
	// User is the delegated user the decision was made for, if any.
	User *User `json:"user,omitempty"`
	// Receipt is the compact JWS for the broker (allow only).
	Receipt string `json:"receipt,omitempty"`
	// ReceiptExpires is when the receipt expires (allow only).
	ReceiptExpires string `json:"receipt_expires,omitempty"`
}

// Finding is a guardrail finding: type, rule, argument path, byte offset
// and length — never the value.
type Finding = entry.Finding

// User is the delegated user of a decision.
type User = entry.User

// LegacyActionRequest is the body of POST /actions, as the ZT JavaScript
// SDK's ZeroTrustClient.decide sends it. Actor is the caller's SPIFFE ID,
// one of its registered aliases, or absent (the caller).
type LegacyActionRequest struct {
	Actor    string `json:"actor,omitempty"`
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// LegacyActionResponse is the answer of POST /actions: 200 with ok=true for
// an allow, 403 with ok=false for a deny.
type LegacyActionResponse struct {
	OK       bool        `json:"ok"`
	Actor    string      `json:"actor"`
	Action   string      `json:"action"`
	Resource string      `json:"resource"`
	Decision string      `json:"decision"`
	Reason   string      `json:"reason"`
	Audit    LegacyAudit `json:"audit"`
}

// LegacyAudit is the log evidence of a POST /actions decision.
type LegacyAudit struct {
	Timestamp     string `json:"timestamp"`
	CorrelationID string `json:"correlation_id"`
	Origin        string `json:"origin"`
	Index         uint64 `json:"index"`
	LeafHash      string `json:"leaf_hash"`
	ActionDigest  string `json:"action_digest"`
	PolicyHash    string `json:"policy_hash"`
	// Checkpoint is the signed checkpoint (C2SP signed note) that covers
	// Index, when one was published within the wait; otherwise omitted and
	// EntryURL serves entry, proof and checkpoint later.
	Checkpoint string `json:"checkpoint,omitempty"`
	EntryURL   string `json:"entry_url"`
	Receipt    string `json:"receipt,omitempty"`
}

// AgentRequest is the body of POST /v1/agents (administrators only).
type AgentRequest struct {
	// Op is "register" (create or replace) or "revoke".
	Op string `json:"op"`
	// ID is the agent's SPIFFE ID.
	ID      string            `json:"id"`
	Owner   string            `json:"owner,omitempty"`
	Brokers []string          `json:"brokers,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Aliases are actor names bound to ID (as the older ZT control plane
	// named actors): POST /actions accepts them as the caller's actor. A
	// register replaces the agent's aliases; none may be held by another
	// registered agent.
	Aliases []string `json:"aliases,omitempty"`
}

// Agent is a registry record, as GET /v1/agents/{id} returns it.
type Agent struct {
	ID      string            `json:"id"`
	Status  string            `json:"status"` // "registered" or "revoked"
	Owner   string            `json:"owner,omitempty"`
	Brokers []string          `json:"brokers,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Aliases are the actor names bound to ID (a revoked record shows the
	// ones it had; they no longer resolve).
	Aliases []string `json:"aliases,omitempty"`
	// Updated is when the last change was committed, By who made it, and
	// Index the log index of that agent entry.
	Updated string `json:"updated"`
	By      string `json:"by"`
	Index   uint64 `json:"index"`
}

// AgentList answers GET /v1/agents (administrators): every record,
// registered and revoked, sorted by ID.
type AgentList struct {
	Agents []Agent `json:"agents"`
}

// AgentResponse answers POST /v1/agents once the change is committed.
type AgentResponse struct {
	Agent         Agent  `json:"agent"`
	Log           LogRef `json:"log"`
	CorrelationID string `json:"correlation_id"`
}

// ResultRequest is the body of POST /v1/results: a broker's signed
// broker-result statement (attest/attest.md) and its X.509-SVID chain.
type ResultRequest struct {
	// Statement is the DSSE envelope, verified and committed exactly as
	// received.
	Statement *Envelope `json:"statement"`
	// Chain is the signer's X.509-SVID chain: standard base64 DER, leaf
	// first, 1 to 4 certificates.
	Chain []string `json:"chain"`
}

// ResultResponse answers POST /v1/results once the result entry is
// committed (or, for the same statement posted again, the entry committed
// before).
type ResultResponse struct {
	DecisionIndex uint64 `json:"decision_index"`
	Outcome       string `json:"outcome"`
	// Log locates the result entry.
	Log           LogRef `json:"log"`
	CorrelationID string `json:"correlation_id"`
}

// MaxPossibleActions is the most action names one POST
// /v1/actions/possible asks about.
const MaxPossibleActions = 256

// PossibleRequest is the body of POST /v1/actions/possible: the action
// names the caller (the authenticated actor) asks about.
type PossibleRequest struct {
	Actions []string `json:"actions"`
}

// PossibleResponse is the answer of POST /v1/actions/possible. It is
// advisory: never evidence, never an authorization, and nothing of it is
// committed. Each answer is "never" (the policy version named cannot allow
// the action for this actor, whatever else the request holds) or
// "possible".
type PossibleResponse struct {
	Actor   string           `json:"actor"`
	Policy  Policy           `json:"policy"`
	Answers []PossibleAnswer `json:"answers"`
}

// PossibleAnswer is one action's answer, in the order asked.
type PossibleAnswer struct {
	Action string `json:"action"`
	Answer string `json:"answer"`
}
