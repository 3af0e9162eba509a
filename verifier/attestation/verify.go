// Package attestation verifies the signed statements committed in log
// entries: a decision's runtime-context attestation (the agent's) and a
// result's broker-result statement (the broker's), each a DSSE envelope
// with the signer's X.509-SVID chain (attest/attest.md), against SPIFFE
// trust bundle roots at the time the entry was made. Evidence bundles
// (verifier/bundle) and the whole-log audit (verifier/audit, through
// EntryCheck) use it. Pure: entries and roots in, verdict out.
//
// What an entry lets a verifier check, and what it does not, is written
// down in verifier/bundle/bundle.md ("Attestations in entries").
package attestation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
)

// Skew is the clock skew tolerated on a runtime context's validity window
// at the decision's time (the decision path's).
const Skew = 30 * time.Second

// Steps name what failed, in the order they are checked.
const (
	StepNotEmbedded = "not embedded" // the entry keeps only the digest (envelope above the size limit)
	StepRefused     = "refused"      // committed without a chain: the service did not accept it
	StepEnvelope    = "envelope"     // DSSE form, payloadType, base64
	StepChain       = "chain"        // the X.509-SVID chain to the SPIFFE roots at the entry's time
	StepSignature   = "signature"    // keyid and the DSSE signature over the payload as received
	StepStatement   = "statement"    // in-toto Statement v1, predicate type, subject form, predicate
	StepSigner      = "signer"       // the SPIFFE ID that signed is the one the entry names
	StepSubject     = "subject"      // the statement is about the entry's action digest
	StepWindow      = "window"       // a runtime context valid at the decision's time
	StepEntry       = "entry"        // the predicate agrees with the entry's fields
	StepClaims      = "claims"       // the committed claims are the ones the signed predicate gives (attest.md)
)

// Error says which step failed.
type Error struct {
	Step string
	Err  error
}

func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(step string, format string, args ...any) *Error {
	return &Error{Step: step, Err: fmt.Errorf(format, args...)}
}

func classify(err error) *Error {
	step := StepStatement
	switch {
	case errors.Is(err, attest.ErrChain):
		step = StepChain
	case errors.Is(err, attest.ErrSignature):
		step = StepSignature
	case errors.Is(err, attest.ErrSigner):
		step = StepSigner
	case errors.Is(err, attest.ErrSubject):
		step = StepSubject
	case errors.Is(err, attest.ErrExpired):
		step = StepWindow
	}
	return &Error{Step: step, Err: err}
}

// Digest says how the entry's committed digest was checked. The decision
// path and POST /v1/results digest the envelope bytes as the agent or
// broker sent them, while the entry embeds the envelope in canonical
// (JCS) form; the sent bytes are not kept.
type Digest string

const (
	// DigestOfEmbedded: the digest is of the embedded envelope's bytes
	// (the sender sent it in canonical form).
	DigestOfEmbedded Digest = "embedded"
	// DigestOfSentForm: the digest is of the embedded envelope re-encoded
	// the way ztlog's clients send it (attest's encoding: payloadType,
	// payload, signatures[keyid, sig]) — the same envelope, byte for byte
	// as sent.
	DigestOfSentForm Digest = "ztlog form"
	// DigestUnchecked: the digest matches neither; the sender used another
	// encoding, which the entry does not keep, so the digest cannot be
	// checked (the envelope's signature still is).
	DigestUnchecked Digest = "unchecked"
)

// Proven is what a verified statement proves.
type Proven struct {
	// Signer is the SPIFFE ID that signed, its keyid and its chain's
	// validity.
	Signer   string    `json:"signer"`
	KeyID    string    `json:"keyid"`
	NotAfter time.Time `json:"svid_not_after"`
	// At is the time the chain and the statement were judged at: the
	// entry's time.
	At time.Time `json:"at"`
	// Digest says how the committed digest was checked (filled by the
	// caller with CheckDigest).
	Digest Digest `json:"digest_check,omitempty"`
	// RuntimeContext or BrokerResult is the verified predicate.
	RuntimeContext *attest.RuntimeContext `json:"runtime_context,omitempty"`
	BrokerResult   *attest.BrokerResult   `json:"broker_result,omitempty"`
}

// Verifier verifies committed statements against SPIFFE roots. It caches
// verified signer chains (an SVID signs many entries), so it is meant to
// live for one bundle or one audit. Safe for concurrent use.
type Verifier struct {
	roots x509bundle.Source
	mu    sync.Mutex
	cache map[[32]byte]*chainEntry
}

// maxCachedChains bounds the chain cache (a few KiB each; when full it is
// emptied and refilled, so a log of more live SVIDs than this costs more
// chain verifications, never more memory).
const maxCachedChains = 1024

type chainEntry struct {
	id                  spiffeid.ID
	leaf                *x509.Certificate
	notBefore, notAfter time.Time
}

// NewVerifier verifies against roots.
func NewVerifier(roots x509bundle.Source) *Verifier {
	return &Verifier{roots: roots, cache: map[[32]byte]*chainEntry{}}
}

// chain verifies a committed chain at t, from the cache when a chain of
// the same bytes verified before and t is within every certificate's
// validity on the path that verified (path building depends on nothing
// else but the roots, fixed for the Verifier).
func (v *Verifier) chain(b64 []string, t time.Time) (*chainEntry, *Error) {
	h := sha256.New()
	for _, c := range b64 {
		io.WriteString(h, c)
		h.Write([]byte{0})
	}
	var key [32]byte
	h.Sum(key[:0])
	v.mu.Lock()
	ce := v.cache[key]
	v.mu.Unlock()
	if ce != nil && !t.Before(ce.notBefore) && !t.After(ce.notAfter) {
		return ce, nil
	}
	ders, err := attest.DecodeChain(b64)
	if err != nil {
		return nil, &Error{Step: StepChain, Err: err}
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if len(der) > attest.MaxCertificate {
			return nil, fail(StepChain, "chain[%d] is %d bytes, the limit is %d", i, len(der), attest.MaxCertificate)
		}
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fail(StepChain, "chain[%d]: %v", i, err)
		}
	}
	id, paths, err := x509svid.Verify(certs, v.roots, x509svid.WithTime(t))
	if err != nil {
		return nil, fail(StepChain, "%v", err)
	}
	ce = &chainEntry{id: id, leaf: certs[0], notBefore: certs[0].NotBefore, notAfter: certs[0].NotAfter}
	if len(paths) > 0 {
		for _, c := range paths[0] {
			if c.NotBefore.After(ce.notBefore) {
				ce.notBefore = c.NotBefore
			}
			if c.NotAfter.Before(ce.notAfter) {
				ce.notAfter = c.NotAfter
			}
		}
	}
	v.mu.Lock()
	if len(v.cache) >= maxCachedChains {
		clear(v.cache)
	}
	v.cache[key] = ce
	v.mu.Unlock()
	return ce, nil
}

// statement checks the parts common to both kinds: embedded, chained,
// signed, of the right type.
func (v *Verifier) statement(a *entry.Attestation, t time.Time, predicateType string) (*attest.Verified, *chainEntry, *Error) {
	if len(a.Envelope) == 0 {
		return nil, nil, fail(StepNotEmbedded, "the entry keeps only the statement's digest %s (the envelope was above the size limit), so its signature cannot be checked from the log", a.Digest)
	}
	if len(a.Chain) == 0 {
		return nil, nil, fail(StepRefused, "committed without a signer chain: the service did not accept this statement")
	}
	ce, e := v.chain(a.Chain, t)
	if e != nil {
		return nil, nil, e
	}
	ver, err := attest.VerifyWithSigner(context.Background(), a.Envelope, ce.id, ce.leaf, predicateType)
	if err != nil {
		e := classify(err)
		if e.Step == StepStatement && !envelopeParses(a.Envelope) {
			// attest reports envelope and statement form errors alike.
			e.Step = StepEnvelope
		}
		return nil, nil, e
	}
	return ver, ce, nil
}

func envelopeParses(raw []byte) bool {
	var env dsse.Envelope
	return json.Unmarshal(raw, &env) == nil && env.PayloadType == attest.PayloadType && len(env.Signatures) == 1
}

// CheckDigest checks a committed digest against the embedded envelope, in
// the two forms it can have been sent in (Decision and Result leave it to
// the caller: the whole-log audit has no use for it).
func CheckDigest(a *entry.Attestation) Digest {
	if entry.Digest(a.Envelope) == a.Digest {
		return DigestOfEmbedded
	}
	var env dsse.Envelope
	if err := json.Unmarshal(a.Envelope, &env); err != nil {
		return DigestUnchecked
	}
	sent, err := json.Marshal(&env)
	if err == nil && entry.Digest(sent) == a.Digest {
		return DigestOfSentForm
	}
	return DigestUnchecked
}

func proven(ver *attest.Verified, ce *chainEntry, t time.Time) *Proven {
	return &Proven{Signer: ver.Signer.String(), KeyID: attest.KeyID(ce.leaf), NotAfter: ce.notAfter.UTC(), At: t.UTC()}
}

// begin reads the entry's time and the SPIFFE ID that must have signed
// (who, the entry's role), and checks the statement up to its signature.
func (v *Verifier) begin(a *entry.Attestation, when, who, role, predicateType string) (*attest.Verified, *chainEntry, time.Time, spiffeid.ID, error) {
	t, err := entry.ParseTime(when)
	if err != nil {
		return nil, nil, t, spiffeid.ID{}, fail(StepEntry, "entry time %q: %v", when, err)
	}
	ver, ce, e := v.statement(a, t, predicateType)
	if e != nil {
		return nil, nil, t, spiffeid.ID{}, e
	}
	signer, err := spiffeid.FromString(who)
	if err != nil {
		return nil, nil, t, spiffeid.ID{}, fail(StepSigner, "the %s %q is not a SPIFFE ID", role, who)
	}
	return ver, ce, t, signer, nil
}

// Decision verifies a decision's runtime-context attestation, if it has
// one (nil, nil when not): the envelope, the chain to the roots at the
// decision's time, the signature, a runtime-context statement signed by
// the decision's actor about its action digest and valid at its time
// (Skew tolerated), naming the decision's broker and capability manifest
// when it names them, and, for an allow, the policy version that decided.
func (v *Verifier) Decision(d *entry.Decision) (*Proven, error) {
	a := d.Attestation
	if a == nil {
		return nil, nil
	}
	ver, ce, t, signer, err := v.begin(a, d.Time, d.Actor, "decision's actor", attest.RuntimeContextType)
	if err != nil {
		return nil, err
	}
	p, err := attest.CheckRuntimeContext(ver, attest.Expect{Now: t, Signer: signer, ActionDigest: d.ActionDigest, Skew: Skew})
	if err != nil {
		return nil, classify(err)
	}
	switch {
	case p.Broker != "" && p.Broker != d.Broker:
		return nil, fail(StepEntry, "the attestation names broker %s, the decision %s", p.Broker, d.Broker)
	case p.Sandbox != nil && p.Sandbox.Capabilities != d.CapabilitiesDigest:
		return nil, fail(StepEntry, "the attestation names capability manifest %s, the decision %q", p.Sandbox.Capabilities, d.CapabilitiesDigest)
	case p.PolicyHash != "" && d.Effect == entry.Allow && p.PolicyHash != d.Policy.Hash:
		return nil, fail(StepEntry, "the agent expected policy %s; an allow by policy %s is not one it accepted", p.PolicyHash, d.Policy.Hash)
	}
	if err := sameClaims(a.Claims, attest.RuntimeContextClaims(ver.Signer, p)); err != nil {
		return nil, err
	}
	out := proven(ver, ce, t)
	out.RuntimeContext = p
	return out, nil
}

// Result verifies a result's broker-result statement: the envelope, the
// chain to the roots at the result's time, the signature, a broker-result
// statement signed by the result's broker about its action digest, whose
// predicate names the result's decision (index, leaf hash), receipt id,
// correlation id, outcome and exit status.
func (v *Verifier) Result(r *entry.Result) (*Proven, error) {
	a := &r.Statement
	ver, ce, t, signer, err := v.begin(a, r.Time, r.Broker, "result's broker", attest.BrokerResultType)
	if err != nil {
		return nil, err
	}
	p, err := attest.CheckBrokerResult(ver, attest.Expect{Now: t, Signer: signer, ActionDigest: r.ActionDigest})
	if err != nil {
		return nil, classify(err)
	}
	exit := -1
	if p.Exit != nil {
		exit = p.Exit.Status
	}
	committed := -1
	if r.ExitStatus != nil {
		committed = *r.ExitStatus
	}
	switch {
	case p.Decision.Index != r.DecisionIndex:
		return nil, fail(StepEntry, "the statement is about decision %d, the result links %d", p.Decision.Index, r.DecisionIndex)
	case p.Decision.LeafHash != r.DecisionLeafHash:
		return nil, fail(StepEntry, "the statement names decision leaf hash %s, the result %s", p.Decision.LeafHash, r.DecisionLeafHash)
	case p.ReceiptID != r.ReceiptID:
		return nil, fail(StepEntry, "the statement honoured receipt %s, the result names %s", p.ReceiptID, r.ReceiptID)
	case p.CorrelationID != r.CorrelationID:
		return nil, fail(StepEntry, "the statement's correlation id is %q, the result's %q", p.CorrelationID, r.CorrelationID)
	case p.Outcome != r.Outcome:
		return nil, fail(StepEntry, "the statement's outcome is %s, the result's %s", p.Outcome, r.Outcome)
	case exit != committed:
		return nil, fail(StepEntry, "the statement's exit status is %d, the result's %d", exit, committed)
	}
	if err := sameClaims(a.Claims, attest.BrokerResultClaims(ver.Signer, p)); err != nil {
		return nil, err
	}
	out := proven(ver, ce, t)
	out.BrokerResult = p
	return out, nil
}

// sameClaims checks the claims an entry commits against those derived from
// the signed predicate: the same keys, the same values. An entry that
// commits no claims has nothing to contradict.
func sameClaims(committed, signed map[string]string) *Error {
	if len(committed) == 0 || maps.Equal(committed, signed) {
		return nil
	}
	// They differ: name the first differing claim, in key order.
	keys := make([]string, 0, len(committed)+len(signed))
	for k := range committed {
		keys = append(keys, k)
	}
	for k := range signed {
		if _, ok := committed[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		c, inEntry := committed[k]
		sv, inSigned := signed[k]
		switch {
		case !inSigned:
			return fail(StepClaims, "the entry commits claim %q = %q, which the signed statement does not give", k, text.Cut(c, 120))
		case !inEntry:
			return fail(StepClaims, "the signed statement gives claim %q = %q, which the entry does not commit", k, text.Cut(sv, 120))
		case c != sv:
			return fail(StepClaims, "the entry commits claim %q = %q, the signed statement gives %q", k, text.Cut(c, 120), text.Cut(sv, 120))
		}
	}
	return nil
}

// EntryCheck is the whole-log audit's check of committed statements
// (it satisfies verifier/audit's EntryVerifier): every decision
// attestation and result statement the log accepted is verified as
// Decision and Result do. Statements the entry does not embed (above the
// size limit) cannot be checked from the log: the audit reports each as a
// warning (Unverifiable). Attestations a deny records as refused (the
// service did not accept them) are not checked.
type EntryCheck struct{ V *Verifier }

// Name is "attestation": the audit reports "signature.attestation".
func (EntryCheck) Name() string { return "attestation" }

// Applies reports whether the entry carries a statement this check
// verifies.
func (EntryCheck) Applies(e entry.Entry) bool {
	switch x := e.(type) {
	case *entry.Decision:
		a := x.Attestation
		return a != nil && len(a.Envelope) > 0 && (len(a.Chain) > 0 || x.Effect == entry.Allow)
	case *entry.Result:
		return len(x.Statement.Envelope) > 0
	}
	return false
}

// Unverifiable reports a statement the entry keeps only the digest of.
func (EntryCheck) Unverifiable(e entry.Entry) (string, bool) {
	switch x := e.(type) {
	case *entry.Decision:
		if a := x.Attestation; a != nil && len(a.Envelope) == 0 && (len(a.Chain) > 0 || x.Effect == entry.Allow) {
			return fmt.Sprintf("the decision keeps only its attestation's digest %s (the envelope was above the size limit)", a.Digest), true
		}
	case *entry.Result:
		if len(x.Statement.Envelope) == 0 {
			return fmt.Sprintf("the result keeps only its statement's digest %s (the envelope was above the size limit)", x.Statement.Digest), true
		}
	}
	return "", false
}

// VerifyEntry verifies the entry's statement.
func (c EntryCheck) VerifyEntry(_ uint64, _ []byte, e entry.Entry) error {
	var err error
	switch x := e.(type) {
	case *entry.Decision:
		if x.Attestation != nil && len(x.Attestation.Chain) == 0 && x.Effect == entry.Allow {
			return fail(StepRefused, "an allow whose attestation was committed without a signer chain (not verified by the service)")
		}
		_, err = c.V.Decision(x)
	case *entry.Result:
		_, err = c.V.Result(x)
	}
	return err
}
