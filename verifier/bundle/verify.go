package bundle

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// Verdict is the outcome of one check.
type Verdict string

// Verdicts. A bundle is valid when no check failed; "not verified" marks
// what this build cannot check yet, and says so.
const (
	Pass        Verdict = "pass"
	Fail        Verdict = "fail"
	NotVerified Verdict = "not verified"
	Absent      Verdict = "absent"
)

// The checks, by stable name, in the order they run.
const (
	CheckCheckpoint  = "checkpoint"
	CheckDecision    = "decision.inclusion"
	CheckEntry       = "decision.entry"
	CheckPolicyHash  = "decision.policy_hash"
	CheckSPIFFE      = "spiffe.bundle"
	CheckAttestation = "decision.attestation"
	CheckAttDigest   = "decision.attestation.digest"
	CheckReceiptKey  = "receipt.key"
	CheckReceipt     = "receipt.signature"
	CheckBinding     = "receipt.binding"
	CheckResult      = "result.inclusion"
	CheckResultEntry = "result.entry"
	CheckResultLink  = "result.link"
	CheckStatement   = "result.statement"
	CheckStmtDigest  = "result.statement.digest"
	CheckTimes       = "times"
)

// Check is one verified property.
type Check struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`
}

// Report says what a bundle proves.
type Report struct {
	Origin string `json:"origin"`
	// Checkpoint is the verified checkpoint the entries are proven into.
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	// Decision and Result are the entries as parsed (nil if they did not
	// parse).
	Decision *entry.Decision `json:"decision,omitempty"`
	Result   *entry.Result   `json:"result,omitempty"`
	// Receipt is the verified receipt's claims.
	Receipt *receipt.Claims `json:"receipt,omitempty"`
	// SPIFFE describes the SPIFFE roots the statements were checked
	// against, and whether the caller pinned them.
	SPIFFE *SPIFFEInfo `json:"spiffe_bundle,omitempty"`
	// Attestation is what the agent's verified runtime-context attestation
	// proves (who signed, when, the predicate); Statement the same for the
	// broker's result statement. Set when the signature verified, whether
	// or not the roots were pinned (see SPIFFE.Pinned).
	Attestation *attestation.Proven `json:"attestation,omitempty"`
	Statement   *attestation.Proven `json:"statement,omitempty"`
	Checks      []Check             `json:"checks"`
	// Valid is true when no check failed.
	Valid bool `json:"valid"`
	// FirstFailure is the first failing check, nil when Valid.
	FirstFailure *Check `json:"first_failure,omitempty"`
	// NotVerified lists what is in the bundle but was not verified.
	NotVerified []string `json:"not_verified,omitempty"`
}

// SPIFFEInfo describes the SPIFFE roots used.
type SPIFFEInfo struct {
	// Digest names the roots the bundle carries (attestation.Roots.Digest),
	// empty when it carries none.
	Digest       string   `json:"digest,omitempty"`
	TrustDomains []string `json:"trust_domains,omitempty"`
	// Pinned is true when the caller gave the roots it trusts
	// (Options.Roots) and the bundle's are among them.
	Pinned bool `json:"pinned"`
}

// CheckpointInfo describes the verified checkpoint.
type CheckpointInfo struct {
	Size      uint64        `json:"size"`
	Root      []byte        `json:"root"`
	Log       string        `json:"log"`
	Cosigners []CosignerRef `json:"cosigners,omitempty"`
}

// CosignerRef is a witness whose cosignature counted, and when it signed.
type CosignerRef struct {
	Witness string    `json:"witness"`
	Time    time.Time `json:"time"`
}

// Options adjust Verify.
type Options struct {
	// PolicyHashes, when not empty, are the policy versions the caller
	// accepts: the decision's policy hash must be one of them.
	PolicyHashes []string
	// Now is the verifier's clock, for cosignature timestamps (zero: not
	// checked). Receipts are judged at the time they were issued, not now.
	Now time.Time
	// Skew is the clock difference tolerated between the log's entry times
	// and the receipt's issue time (default 1 minute).
	Skew time.Duration
	// Roots are the SPIFFE trust bundle roots the caller trusts
	// (zt-audit verify --spiffe-bundle). The bundle's own roots must be
	// among them; without them, the bundle's roots are used but not
	// trusted, and the statements are reported "not verified".
	Roots *attestation.Roots
}

type run struct {
	rep *Report
}

func (r *run) add(name string, v Verdict, format string, args ...any) bool {
	c := Check{Name: name, Verdict: v, Detail: fmt.Sprintf(format, args...)}
	r.rep.Checks = append(r.rep.Checks, c)
	switch v {
	case Fail:
		if r.rep.FirstFailure == nil {
			r.rep.FirstFailure = &c
		}
	case NotVerified:
		r.rep.NotVerified = append(r.rep.NotVerified, name)
	}
	return v != Fail
}

// Verify checks everything in the bundle against the trust policy and
// says what it proves. It reads no clock (opts.Now) and does no I/O.
func Verify(b *Bundle, pol *trustpolicy.Policy, opts Options) *Report {
	if opts.Skew == 0 {
		opts.Skew = time.Minute
	}
	r := &run{rep: &Report{Origin: b.Origin}}
	defer func() { r.rep.Valid = r.rep.FirstFailure == nil }()

	// The checkpoint: every proof must carry the same one, and it must
	// verify against the policy.
	dp, err := tlogproof.Parse([]byte(b.Decision.Proof))
	if err != nil {
		r.add(CheckDecision, Fail, "the decision's tlog-proof: %v", err)
		return r.rep
	}
	var rp *tlogproof.Proof
	if b.Result != nil {
		if rp, err = tlogproof.Parse([]byte(b.Result.Proof)); err != nil {
			r.add(CheckResult, Fail, "the result's tlog-proof: %v", err)
			return r.rep
		}
		if !bytes.Equal(rp.Checkpoint, dp.Checkpoint) {
			r.add(CheckCheckpoint, Fail, "the decision and the result are proven into different checkpoints; a bundle proves all its entries into one")
			return r.rep
		}
	}
	cp, err := pol.VerifyCheckpoint(dp.Checkpoint, trustpolicy.VerifyOptions{Now: opts.Now})
	if err != nil {
		r.add(CheckCheckpoint, Fail, "%v", err)
		return r.rep
	}
	if cp.Origin != b.Origin {
		r.add(CheckCheckpoint, Fail, "the bundle says origin %q, its checkpoint is of %q", b.Origin, cp.Origin)
		return r.rep
	}
	info := &CheckpointInfo{Size: cp.Size, Root: cp.Hash, Log: cp.Log.VKey}
	var who []string
	for _, c := range cp.Cosignatures {
		info.Cosigners = append(info.Cosigners, CosignerRef{Witness: c.Witness.Name, Time: c.Time})
		who = append(who, fmt.Sprintf("%s at %s", c.Witness.Name, c.Time.Format(time.RFC3339)))
	}
	r.rep.Checkpoint = info
	witnessed := "no cosignatures needed (quorum none)"
	if len(who) > 0 {
		witnessed = "cosigned by " + strings.Join(who, ", ")
	}
	r.add(CheckCheckpoint, Pass, "size %d, signed by the log %s, %s", cp.Size, cp.Origin, witnessed)

	// The decision.
	if dp.Index != b.Decision.Index {
		r.add(CheckDecision, Fail, "the bundle says index %d, its tlog-proof is for index %d", b.Decision.Index, dp.Index)
		return r.rep
	}
	leafHash := proof.LeafHash(b.Decision.Leaf)
	if err := proof.Inclusion(cp, dp.Index, leafHash, dp.Hashes); err != nil {
		r.add(CheckDecision, Fail, "%v", err)
		return r.rep
	}
	r.add(CheckDecision, Pass, "entry %d (leaf hash %s) is in the tree of size %d", dp.Index, b64(leafHash), cp.Size)
	e, err := entry.Parse(b.Decision.Leaf)
	if err != nil {
		r.add(CheckEntry, Fail, "entry %d: %v", dp.Index, err)
		return r.rep
	}
	d, ok := e.(*entry.Decision)
	if !ok {
		r.add(CheckEntry, Fail, "entry %d is a %s entry, not a decision", dp.Index, e.EntryKind())
		return r.rep
	}
	r.rep.Decision = d
	r.add(CheckEntry, Pass, "%s %s on %s for %s at %s (policy %s %s)", d.Effect, d.Action, d.Resource, d.Actor, d.Time, d.Policy.Engine, d.Policy.Hash)
	if len(opts.PolicyHashes) > 0 {
		if slices.Contains(opts.PolicyHashes, d.Policy.Hash) {
			r.add(CheckPolicyHash, Pass, "decided by policy %s, one you accept", d.Policy.Hash)
		} else {
			r.add(CheckPolicyHash, Fail, "decided by policy %s, not one you accept (%s)", d.Policy.Hash, strings.Join(opts.PolicyHashes, ", "))
		}
	}
	sv, pinned, ok := r.spiffe(b, opts.Roots, d.Attestation != nil || b.Result != nil)
	if !ok {
		return r.rep
	}
	if d.Attestation != nil {
		r.verifyAttestation(sv, pinned, d)
	}

	decisionTime, _ := entry.ParseTime(d.Time)
	if !r.cosignedAfter(cp, "decision", decisionTime, opts.Skew) {
		return r.rep
	}
	r.verifyReceipt(b, d, dp.Index, leafHash, decisionTime, opts)
	if b.Result != nil {
		r.verifyResult(b, cp, rp, d, dp.Index, leafHash, decisionTime, opts.Skew, sv, pinned)
	}
	return r.rep
}

// cosignedAfter checks that no witness cosigned the checkpoint before an
// entry it covers was made: a witness cannot have seen the future.
func (r *run) cosignedAfter(cp *trustpolicy.Checkpoint, what string, made time.Time, skew time.Duration) bool {
	for _, c := range cp.Cosignatures {
		if c.Time.Before(made.Add(-skew).Truncate(time.Second)) {
			return r.add(CheckTimes, Fail, "witness %s cosigned the checkpoint at %s, before the %s it covers was made (%s)", c.Witness.Name, c.Time.Format(time.RFC3339), what, made.UTC().Format(time.RFC3339Nano))
		}
	}
	return true
}

func (r *run) verifyReceipt(b *Bundle, d *entry.Decision, index uint64, leafHash []byte, decided time.Time, opts Options) {
	switch {
	case b.Receipt == "" && len(b.ReceiptKey) > 0:
		r.add(CheckReceiptKey, Fail, "a receipt key without a receipt")
		return
	case b.Receipt == "":
		if d.Receipt != nil {
			r.add(CheckReceipt, Absent, "the decision names receipt %s (key %s, for %s), but the receipt is not in the bundle", d.Receipt.ID, d.Receipt.KeyID, d.Receipt.Audience)
		}
		return
	case d.Effect != entry.Allow || d.Receipt == nil:
		r.add(CheckReceipt, Fail, "the bundle holds a receipt, but the decision is a %s that names no receipt", d.Effect)
		return
	}
	// The key: well formed, a public signing key, the one whose thumbprint
	// the decision entry commits to.
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(b.ReceiptKey); err != nil {
		r.add(CheckReceiptKey, Fail, "receipt_key is not a JWK: %v", err)
		return
	}
	canon, err := key.MarshalJSON()
	if err != nil || !bytes.Equal(canon, b.ReceiptKey) {
		r.add(CheckReceiptKey, Fail, "receipt_key is not in its published form (as the JWKS serves it)")
		return
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	switch {
	case err != nil || !key.IsPublic() || key.Use != "sig":
		r.add(CheckReceiptKey, Fail, "receipt_key must be a public signing key (use sig)")
		return
	case key.KeyID != base64.RawURLEncoding.EncodeToString(thumb):
		r.add(CheckReceiptKey, Fail, "receipt_key's kid %q is not its RFC 7638 thumbprint %s", key.KeyID, base64.RawURLEncoding.EncodeToString(thumb))
		return
	case key.KeyID != d.Receipt.KeyID:
		r.add(CheckReceiptKey, Fail, "receipt_key is %s, the decision entry commits to key %s", key.KeyID, d.Receipt.KeyID)
		return
	}
	r.add(CheckReceiptKey, Pass, "%s key %s, the one the decision entry commits to", key.Algorithm, key.KeyID)

	// The signature and claims, judged at the time the receipt was issued.
	// Each part must be strict base64url, so that no byte of it is slack.
	for i, part := range strings.Split(b.Receipt, ".") {
		if _, err := base64.RawURLEncoding.Strict().DecodeString(part); err != nil {
			r.add(CheckReceipt, Fail, "receipt part %d is not strict base64url (no padding, zero trailing bits): %v", i+1, err)
			return
		}
	}
	parsed, err := receipt.Parse(b.Receipt)
	if err != nil {
		r.add(CheckReceipt, Fail, "%v", err)
		return
	}
	claims, err := receipt.Verify(b.Receipt, &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key}}, receipt.Expect{
		Issuer: b.Origin, Audience: d.Receipt.Audience, ActionDigest: d.ActionDigest, Now: time.Unix(parsed.Claims.IssuedAt, 0),
	})
	if err != nil {
		r.add(CheckReceipt, Fail, "%v", err)
		return
	}
	r.rep.Receipt = claims
	r.add(CheckReceipt, Pass, "signed by key %s for broker %s, issued %s, expires %s", parsed.KeyID, claims.Audience,
		time.Unix(claims.IssuedAt, 0).UTC().Format(time.RFC3339), time.Unix(claims.Expiry, 0).UTC().Format(time.RFC3339))

	// The receipt and the committed decision name each other.
	expires, _ := entry.ParseTime(d.Receipt.Expires)
	issued := time.Unix(claims.IssuedAt, 0)
	switch {
	case claims.LogIndex != index:
		r.add(CheckBinding, Fail, "the receipt names log index %d, the decision is at %d", claims.LogIndex, index)
	case claims.LeafHash != b64(leafHash):
		r.add(CheckBinding, Fail, "the receipt names leaf hash %s, the decision's is %s", claims.LeafHash, b64(leafHash))
	case claims.ID != d.Receipt.ID:
		r.add(CheckBinding, Fail, "the receipt's id is %q, the decision names %q", claims.ID, d.Receipt.ID)
	case claims.Subject != d.Actor:
		r.add(CheckBinding, Fail, "the receipt is for %s, the decision for %s", claims.Subject, d.Actor)
	case claims.Decision != string(entry.Allow):
		r.add(CheckBinding, Fail, "the receipt's decision is %q", claims.Decision)
	case claims.PolicyHash != d.Policy.Hash:
		r.add(CheckBinding, Fail, "the receipt names policy %s, the decision %s", claims.PolicyHash, d.Policy.Hash)
	case claims.Expiry != expires.Unix():
		r.add(CheckBinding, Fail, "the receipt expires %s, the decision says %s", time.Unix(claims.Expiry, 0).UTC().Format(time.RFC3339), d.Receipt.Expires)
	case issued.Before(decided.Add(-opts.Skew).Truncate(time.Second)):
		r.add(CheckTimes, Fail, "the receipt was issued at %s, before the decision was made (%s)", issued.UTC().Format(time.RFC3339), d.Time)
	default:
		r.add(CheckBinding, Pass, "the receipt names this entry (index, leaf hash), its action, actor, policy, id and expiry")
	}
}

func (r *run) verifyResult(b *Bundle, cp *trustpolicy.Checkpoint, rp *tlogproof.Proof, d *entry.Decision, index uint64, decisionLeaf []byte, decided time.Time, skew time.Duration, sv *attestation.Verifier, pinned bool) {
	res := b.Result
	if rp.Index != res.Index {
		r.add(CheckResult, Fail, "the bundle says index %d, the result's tlog-proof is for index %d", res.Index, rp.Index)
		return
	}
	leafHash := proof.LeafHash(res.Leaf)
	if err := proof.Inclusion(cp, rp.Index, leafHash, rp.Hashes); err != nil {
		r.add(CheckResult, Fail, "%v", err)
		return
	}
	r.add(CheckResult, Pass, "entry %d (leaf hash %s) is in the tree of size %d", rp.Index, b64(leafHash), cp.Size)
	e, err := entry.Parse(res.Leaf)
	if err != nil {
		r.add(CheckResultEntry, Fail, "entry %d: %v", rp.Index, err)
		return
	}
	rs, ok := e.(*entry.Result)
	if !ok {
		r.add(CheckResultEntry, Fail, "entry %d is a %s entry, not a result", rp.Index, e.EntryKind())
		return
	}
	r.rep.Result = rs
	r.add(CheckResultEntry, Pass, "outcome %s from broker %s at %s", rs.Outcome, rs.Broker, rs.Time)
	resultTime, _ := entry.ParseTime(rs.Time)
	if !r.cosignedAfter(cp, "result", resultTime, skew) {
		return
	}
	switch {
	case d.Effect != entry.Allow:
		r.add(CheckResultLink, Fail, "a result for a %s", d.Effect)
	case rs.DecisionIndex != index:
		r.add(CheckResultLink, Fail, "the result links to entry %d, the decision is entry %d", rs.DecisionIndex, index)
	case rp.Index <= index:
		r.add(CheckResultLink, Fail, "the result (entry %d) is not after its decision (entry %d)", rp.Index, index)
	case rs.DecisionLeafHash != b64(decisionLeaf):
		r.add(CheckResultLink, Fail, "the result names decision leaf hash %s, the decision's is %s", rs.DecisionLeafHash, b64(decisionLeaf))
	case rs.ActionDigest != d.ActionDigest:
		r.add(CheckResultLink, Fail, "the result is for action %s, the allow for %s", rs.ActionDigest, d.ActionDigest)
	case d.Broker != "" && rs.Broker != d.Broker:
		r.add(CheckResultLink, Fail, "the result is from broker %s, the allow is for %s", rs.Broker, d.Broker)
	case d.Receipt != nil && rs.ReceiptID != d.Receipt.ID:
		r.add(CheckResultLink, Fail, "the result honoured receipt %s, the allow issued %s", rs.ReceiptID, d.Receipt.ID)
	case d.Receipt != nil && rs.Broker != d.Receipt.Audience:
		r.add(CheckResultLink, Fail, "the result is from broker %s, the allow's receipt is for %s", rs.Broker, d.Receipt.Audience)
	case resultTime.Before(decided):
		r.add(CheckTimes, Fail, "the result (%s) is older than its decision (%s)", rs.Time, d.Time)
	default:
		r.add(CheckResultLink, Pass, "links to the allow at entry %d: same leaf hash, action, broker and receipt; %s after it", index, resultTime.Sub(decided).Round(time.Millisecond))
	}
	if r.rep.FirstFailure != nil {
		return
	}
	r.verified(CheckStatement, CheckStmtDigest, sv, pinned, &rs.Statement, "the broker's result statement", func() (*attestation.Proven, error) { return sv.Result(rs) },
		func(p *attestation.Proven) string {
			br := p.BrokerResult
			exit := ""
			if br.Exit != nil {
				exit = fmt.Sprintf(", exit status %d", br.Exit.Status)
			}
			return fmt.Sprintf("%s ran it for decision %d (receipt %s): outcome %s%s, from %s to %s, sandbox %s", p.Signer, br.Decision.Index, br.ReceiptID, br.Outcome, exit, br.StartedAt, br.FinishedAt, br.Sandbox.Kind)
		}, func(p *attestation.Proven) { r.rep.Statement = p })
}

// spiffe checks the bundle's SPIFFE roots: well formed, and among the
// caller's pinned roots when it pinned some. It returns the verifier of
// statements (nil when there are no roots at all) and whether its roots
// are trusted.
func (r *run) spiffe(b *Bundle, pinnedRoots *attestation.Roots, signed bool) (*attestation.Verifier, bool, bool) {
	var own *attestation.Roots
	if len(b.SPIFFE) > 0 {
		own = &attestation.Roots{Domains: b.SPIFFE}
		if err := own.Validate(); err != nil {
			return nil, false, r.add(CheckSPIFFE, Fail, "%v", err)
		}
		r.rep.SPIFFE = &SPIFFEInfo{Digest: own.Digest(), TrustDomains: own.TrustDomains()}
	}
	use := own
	switch {
	case own == nil && !signed:
		return nil, false, true
	case own == nil && pinnedRoots == nil:
		r.add(CheckSPIFFE, Absent, "the bundle carries no SPIFFE roots and you pinned none: signed statements cannot be checked")
		return nil, false, true
	case own == nil:
		use = pinnedRoots
		r.rep.SPIFFE = &SPIFFEInfo{Pinned: true, TrustDomains: pinnedRoots.TrustDomains()}
		r.add(CheckSPIFFE, Pass, "the bundle carries no SPIFFE roots; your pinned roots (%s, %s) are used", strings.Join(pinnedRoots.TrustDomains(), ", "), pinnedRoots.Digest())
	case pinnedRoots == nil:
		r.add(CheckSPIFFE, NotVerified, "the bundle carries SPIFFE roots %s (trust domains %s) but you pinned none (Options.Roots): statements are checked against them, but who signed is not proven, since whoever made the bundle chose them", own.Digest(), strings.Join(own.TrustDomains(), ", "))
	default:
		if err := own.Within(pinnedRoots); err != nil {
			return nil, false, r.add(CheckSPIFFE, Fail, "the bundle's SPIFFE roots are not the ones you pinned: %v", err)
		}
		r.rep.SPIFFE.Pinned = true
		r.add(CheckSPIFFE, Pass, "the bundle's SPIFFE roots %s (trust domains %s) are among those you pinned", own.Digest(), strings.Join(own.TrustDomains(), ", "))
	}
	set, err := use.Set()
	if err != nil {
		return nil, false, r.add(CheckSPIFFE, Fail, "%v", err)
	}
	return attestation.NewVerifier(set), r.rep.SPIFFE.Pinned, true
}

func (r *run) verifyAttestation(sv *attestation.Verifier, pinned bool, d *entry.Decision) {
	r.verified(CheckAttestation, CheckAttDigest, sv, pinned, d.Attestation, "the agent's runtime attestation", func() (*attestation.Proven, error) { return sv.Decision(d) },
		func(p *attestation.Proven) string {
			rc := p.RuntimeContext
			what := fmt.Sprintf("%s attested at %s: model %s/%s, code %s", p.Signer, p.At.Format(time.RFC3339), rc.Model.Provider, rc.Model.Name, rc.Code.Digest)
			if rc.Sandbox != nil {
				what += ", sandbox " + rc.Sandbox.Profile
			}
			return what + ", valid " + rc.IssuedAt + " to " + rc.ExpiresAt
		}, func(p *attestation.Proven) { r.rep.Attestation = p })
}

// verified runs one statement's check and its digest check.
func (r *run) verified(check, digestCheck string, sv *attestation.Verifier, pinned bool, a *entry.Attestation, what string, verify func() (*attestation.Proven, error), describe func(*attestation.Proven) string, keep func(*attestation.Proven)) {
	if len(a.Envelope) == 0 {
		r.add(check, NotVerified, "%s: only its digest %s is committed (the envelope was above the size limit), so its signature cannot be checked from the log", what, a.Digest)
		return
	}
	if sv == nil {
		r.add(check, NotVerified, "%s (digest %s) is committed, but there are no SPIFFE roots to check its chain against: pin them (Options.Roots)", what, a.Digest)
		return
	}
	p, err := verify()
	var ae *attestation.Error
	switch {
	case errors.As(err, &ae) && ae.Step == attestation.StepRefused && r.rep.Decision != nil && r.rep.Decision.Effect == entry.Deny && check == CheckAttestation:
		r.add(check, NotVerified, "%s was refused by the service (committed without a signer chain) and the decision is a deny: it proves nothing", what)
		return
	case err != nil:
		r.add(check, Fail, "%v", err)
		return
	}
	p.Digest = attestation.CheckDigest(a)
	keep(p)
	if pinned {
		r.add(check, Pass, "%s", describe(p))
	} else {
		r.add(check, NotVerified, "the signature verifies with a chain to the bundle's own SPIFFE roots, which you did not pin, so the signer is not proven: %s", describe(p))
	}
	switch p.Digest {
	case attestation.DigestOfEmbedded:
		r.add(digestCheck, Pass, "the committed digest %s is of the embedded envelope", a.Digest)
	case attestation.DigestOfSentForm:
		r.add(digestCheck, Pass, "the committed digest %s is of the embedded envelope in the form ztlog's clients send (the entry embeds it in canonical form)", a.Digest)
	default:
		r.add(digestCheck, NotVerified, "the committed digest %s is of the envelope as its signer sent it, in an encoding the entry does not keep; the envelope's signature is what was checked", a.Digest)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
