package attest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zt-infra/ztlog/internal/text"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Predicate type URIs (the Statement's predicateType). See attest.md.
const (
	// RuntimeContextType is the predicate an agent signs about the runtime
	// behind one action: model, tool, sandbox, broker, expected policy, code.
	RuntimeContextType = "https://github.com/zt-infra/ztlog/attest/runtime-context/v1"
	// BrokerResultType is the predicate a broker signs about work it ran
	// (or failed to start) for an allowed decision.
	BrokerResultType = "https://github.com/zt-infra/ztlog/attest/broker-result/v1"
)

// MaxLifetime is the longest validity window (expiresAt − issuedAt) of a
// runtime-context attestation.
const MaxLifetime = time.Hour

// RuntimeContext is the runtime-context predicate (attest.md).
type RuntimeContext struct {
	// Model is the model that chose the action.
	Model Model `json:"model"`
	// Tool is the tool manifest the agent runs with and the tool invoked.
	Tool *Tool `json:"tool,omitempty"`
	// Sandbox is the sandbox the action is to run in.
	Sandbox *Sandbox `json:"sandbox,omitempty"`
	// Broker is the SPIFFE ID of the execution broker the agent hands the
	// work to; it must equal the request's broker.
	Broker string `json:"broker,omitempty"`
	// PolicyHash is the policy version the agent expects to be decided by;
	// a decision made by another version is a deny.
	PolicyHash string `json:"policyHash,omitempty"`
	// Code identifies the agent's own code or image.
	Code Code `json:"code"`
	// IssuedAt and ExpiresAt bound the attestation's validity (RFC 3339).
	IssuedAt  string `json:"issuedAt"`
	ExpiresAt string `json:"expiresAt"`
}

// Model identifies a model.
type Model struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	// Digest of the weights or the served model, when known.
	Digest string `json:"digest,omitempty"`
}

// Tool names the tool manifest and the invoked tool.
type Tool struct {
	// ManifestDigest is the digest of the agent's whole tool manifest.
	ManifestDigest string `json:"manifestDigest"`
	// Name and Version of the tool this action invokes.
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Sandbox names the capability manifest the work runs under.
type Sandbox struct {
	// Profile is the manifest's profile name (e.g. "strict").
	Profile string `json:"profile"`
	// Capabilities is the digest of the capability manifest
	// (contract/capability); it must equal the request's.
	Capabilities string `json:"capabilities"`
}

// Code identifies the agent's code.
type Code struct {
	Digest string `json:"digest"`
	// URI says where it came from (image reference, repository), optional.
	URI string `json:"uri,omitempty"`
}

// BrokerResult is the broker-result predicate (attest.md).
type BrokerResult struct {
	// Decision locates the allow the work was run for.
	Decision DecisionRef `json:"decision"`
	// ReceiptID is the one-time id of the receipt honoured.
	ReceiptID string `json:"receiptId"`
	// CorrelationID is the decision's correlation id.
	CorrelationID string `json:"correlationId"`
	// Outcome is "ok" (exit 0), "failed" (ran, non-zero exit, signal or
	// timeout) or "error" (did not start).
	Outcome string `json:"outcome"`
	// Exit is how the process ended; absent when it did not start.
	Exit *Exit `json:"exit,omitempty"`
	// Error says why the work did not start (Outcome "error").
	Error *ErrorInfo `json:"error,omitempty"`
	// StartedAt and FinishedAt (RFC 3339).
	StartedAt  string `json:"startedAt"`
	FinishedAt string `json:"finishedAt"`
	// Outputs are digests and sizes of what the process wrote.
	Outputs Outputs `json:"outputs"`
	// Sandbox is the containment actually applied.
	Sandbox SandboxApplied `json:"sandbox"`
}

// DecisionRef locates a decision entry.
type DecisionRef struct {
	Index uint64 `json:"index"`
	// LeafHash is the entry's RFC 6962 leaf hash, standard base64.
	LeafHash string `json:"leafHash"`
}

// Exit is how a process ended.
type Exit struct {
	// Status is the exit status, or -1 when killed by a signal.
	Status int `json:"status"`
	// Signal names the signal that killed it ("SIGKILL"), if any.
	Signal string `json:"signal,omitempty"`
	// TimedOut is true when the broker killed it at the time limit.
	TimedOut bool `json:"timedOut,omitempty"`
}

// Error classes of a result whose work did not start.
const (
	ErrorCommandNotAllowed = "command_not_allowed" // not on the manifest's allow list
	ErrorCommandNotFound   = "command_not_found"
	ErrorSandboxSetup      = "sandbox_setup" // containment could not be applied
	ErrorSpawn             = "spawn_failed"  // the process could not be started
)

// ErrorInfo says why the work did not start.
type ErrorInfo struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Outputs are digests and sizes of a run's outputs; never their content.
type Outputs struct {
	Stdout Output `json:"stdout"`
	Stderr Output `json:"stderr"`
	// Files are the output files the manifest names, after the run.
	Files []FileOutput `json:"files,omitempty"`
}

// Output is the digest and size of one output stream.
type Output struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// FileOutput is the digest and size of an output file; Digest is empty when
// the file did not exist after the run.
type FileOutput struct {
	Path   string `json:"path"`
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size"`
}

// SandboxApplied is the containment a broker actually applied.
type SandboxApplied struct {
	// Kind is "landlock+bwrap", "landlock+netns", "landlock", "nono" or
	// "none" (--unsafe-no-sandbox).
	Kind string `json:"kind"`
	// Version of the mechanisms, e.g. "landlock-abi-7 bubblewrap-0.8.0".
	Version string `json:"version"`
	// Capabilities is the digest of the capability manifest enforced.
	Capabilities string `json:"capabilities"`
	// Applied lists the concrete rules, one string each, e.g.
	// "fs.read /usr", "net.blocked namespace", "limit.memory 268435456".
	Applied []string `json:"applied"`
}

// Errors of predicate validation and verification; wrapped with detail.
var (
	// ErrMalformed: not a well-formed envelope, statement or predicate.
	ErrMalformed = errors.New("attestation malformed")
	// ErrSignature: the DSSE signature does not verify with the chain's key.
	ErrSignature = errors.New("attestation signature does not verify")
	// ErrChain: the signer's certificate chain does not verify against the
	// trust bundle at the verification time (unknown CA, expired SVID, not
	// an X.509-SVID).
	ErrChain = errors.New("attestation signer chain does not verify")
	// ErrSigner: signed by a SPIFFE ID other than the one expected.
	ErrSigner = errors.New("attestation signed by the wrong identity")
	// ErrSubject: the statement is about another action.
	ErrSubject = errors.New("attestation is about another action")
	// ErrExpired: outside the predicate's validity window.
	ErrExpired = errors.New("attestation expired or not yet valid")
)

func bad(field, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, field, fmt.Sprintf(format, a...))
}

// isDigest reports whether s is "sha256:" and 64 lowercase hex digits.
func isDigest(s string) bool {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	return ok && text.IsLowerHex(hexPart, 64)
}

const (
	maxName = 256
	maxText = 2048
)

func checkText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return bad(field, "required")
		}
		return nil
	}
	if len(s) > max {
		return bad(field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return bad(field, "not UTF-8")
	}
	if m := text.RefusedMessage(s); m != "" {
		return bad(field, "%s", m)
	}
	return nil
}

func checkDigest(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if !isDigest(s) {
		return bad(field, "want sha256:<64 lowercase hex digits>, got %q", text.Cut(s, 80))
	}
	return nil
}

func checkSPIFFEID(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if _, err := spiffeid.FromString(s); err != nil {
		return bad(field, "not a SPIFFE ID: %v", err)
	}
	return nil
}

// parseTime reads an RFC 3339 time in UTC ("Z").
func parseTime(field, s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") {
		return time.Time{}, bad(field, "want an RFC 3339 time in UTC (ending in Z), got %q", text.Cut(s, 64))
	}
	if strings.Contains(s, ",") {
		// time.Parse takes a comma before the fraction; RFC 3339 does not.
		return time.Time{}, bad(field, "not an RFC 3339 time (the fraction follows a '.'): %q", text.Cut(s, 64))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, bad(field, "not an RFC 3339 time: %q", text.Cut(s, 64))
	}
	return t, nil
}

// FormatTime writes t as predicates carry times: RFC 3339 in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Validate checks every field of the runtime context.
func (p *RuntimeContext) Validate() error {
	if err := checkText("model.provider", p.Model.Provider, maxName, true); err != nil {
		return err
	}
	if err := checkText("model.name", p.Model.Name, maxName, true); err != nil {
		return err
	}
	if err := checkText("model.version", p.Model.Version, maxName, false); err != nil {
		return err
	}
	if err := checkDigest("model.digest", p.Model.Digest, false); err != nil {
		return err
	}
	if t := p.Tool; t != nil {
		if err := checkDigest("tool.manifestDigest", t.ManifestDigest, true); err != nil {
			return err
		}
		if err := checkText("tool.name", t.Name, maxName, true); err != nil {
			return err
		}
		if err := checkText("tool.version", t.Version, maxName, false); err != nil {
			return err
		}
	}
	if s := p.Sandbox; s != nil {
		if err := checkText("sandbox.profile", s.Profile, maxName, true); err != nil {
			return err
		}
		if err := checkDigest("sandbox.capabilities", s.Capabilities, true); err != nil {
			return err
		}
	}
	if err := checkSPIFFEID("broker", p.Broker, false); err != nil {
		return err
	}
	if err := checkDigest("policyHash", p.PolicyHash, false); err != nil {
		return err
	}
	if err := checkDigest("code.digest", p.Code.Digest, true); err != nil {
		return err
	}
	if err := checkText("code.uri", p.Code.URI, maxText, false); err != nil {
		return err
	}
	_, _, err := p.window()
	return err
}

func (p *RuntimeContext) window() (time.Time, time.Time, error) {
	iat, err := parseTime("issuedAt", p.IssuedAt)
	if err != nil {
		return iat, iat, err
	}
	exp, err := parseTime("expiresAt", p.ExpiresAt)
	if err != nil {
		return iat, exp, err
	}
	if !exp.After(iat) {
		return iat, exp, bad("expiresAt", "must be after issuedAt")
	}
	if exp.Sub(iat) > MaxLifetime {
		return iat, exp, bad("expiresAt", "validity %s is longer than %s; sign a fresh attestation per action", exp.Sub(iat), MaxLifetime)
	}
	return iat, exp, nil
}

// Outcomes of a broker result.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
	OutcomeError  = "error"
)

// Validate checks every field of the broker result and their consistency:
// "ok" is exit 0, "failed" ran and did not exit 0, "error" did not start
// and says why.
func (p *BrokerResult) Validate() error {
	if p.Decision.Index > 1<<53-1 {
		return bad("decision.index", "larger than 2^53-1")
	}
	if err := checkLeafHash("decision.leafHash", p.Decision.LeafHash); err != nil {
		return err
	}
	if err := checkText("receiptId", p.ReceiptID, maxName, true); err != nil {
		return err
	}
	if err := checkText("correlationId", p.CorrelationID, maxName, true); err != nil {
		return err
	}
	switch p.Outcome {
	case OutcomeOK:
		if p.Exit == nil || p.Exit.Status != 0 || p.Exit.Signal != "" || p.Exit.TimedOut {
			return bad("outcome", "ok needs exit status 0")
		}
	case OutcomeFailed:
		if p.Exit == nil || (p.Exit.Status == 0 && p.Exit.Signal == "" && !p.Exit.TimedOut) {
			return bad("outcome", "failed needs an exit that is not status 0")
		}
	case OutcomeError:
		if p.Exit != nil {
			return bad("exit", "an error outcome (did not start) has no exit")
		}
		if p.Error == nil {
			return bad("error", "an error outcome says why the work did not start")
		}
	default:
		return bad("outcome", "want ok, failed or error, got %q", text.Cut(p.Outcome, 64))
	}
	if p.Outcome != OutcomeError && p.Error != nil {
		return bad("error", "only an error outcome carries an error")
	}
	if e := p.Exit; e != nil {
		if e.Status < -1 || e.Status > 255 {
			return bad("exit.status", "want -1 (signal) or 0-255, got %d", e.Status)
		}
		if (e.Status == -1) != (e.Signal != "") {
			return bad("exit.signal", "status -1 if and only if a signal ended the process")
		}
		if err := checkText("exit.signal", e.Signal, 32, false); err != nil {
			return err
		}
	}
	if e := p.Error; e != nil {
		switch e.Class {
		case ErrorCommandNotAllowed, ErrorCommandNotFound, ErrorSandboxSetup, ErrorSpawn:
		default:
			return bad("error.class", "unknown class %q", text.Cut(e.Class, 64))
		}
		if err := checkText("error.message", e.Message, maxText, true); err != nil {
			return err
		}
	}
	start, err := parseTime("startedAt", p.StartedAt)
	if err != nil {
		return err
	}
	end, err := parseTime("finishedAt", p.FinishedAt)
	if err != nil {
		return err
	}
	if end.Before(start) {
		return bad("finishedAt", "before startedAt")
	}
	for name, o := range map[string]Output{"outputs.stdout": p.Outputs.Stdout, "outputs.stderr": p.Outputs.Stderr} {
		if err := checkDigest(name+".digest", o.Digest, true); err != nil {
			return err
		}
		if o.Size < 0 || o.Size > 1<<53-1 {
			return bad(name+".size", "out of range")
		}
	}
	if len(p.Outputs.Files) > 64 {
		return bad("outputs.files", "more than 64 files")
	}
	for i, f := range p.Outputs.Files {
		field := fmt.Sprintf("outputs.files[%d]", i)
		if err := checkText(field+".path", f.Path, maxText, true); err != nil {
			return err
		}
		if err := checkDigest(field+".digest", f.Digest, false); err != nil {
			return err
		}
		if f.Size < 0 || f.Size > 1<<53-1 || (f.Digest == "" && f.Size != 0) {
			return bad(field+".size", "out of range (0 when the file is absent)")
		}
	}
	s := p.Sandbox
	switch s.Kind {
	case "landlock+bwrap", "landlock+netns", "landlock", "nono", "none":
	default:
		return bad("sandbox.kind", "unknown kind %q", text.Cut(s.Kind, 64))
	}
	if err := checkText("sandbox.version", s.Version, maxName, s.Kind != "none"); err != nil {
		return err
	}
	if err := checkDigest("sandbox.capabilities", s.Capabilities, true); err != nil {
		return err
	}
	if len(s.Applied) > 512 {
		return bad("sandbox.applied", "more than 512 rules")
	}
	for i, a := range s.Applied {
		if err := checkText(fmt.Sprintf("sandbox.applied[%d]", i), a, maxText, true); err != nil {
			return err
		}
	}
	return nil
}

func checkLeafHash(field, s string) error {
	if h, err := base64.StdEncoding.Strict().DecodeString(s); err != nil || len(h) != 32 {
		return bad(field, "want standard base64 of 32 bytes")
	}
	return nil
}
