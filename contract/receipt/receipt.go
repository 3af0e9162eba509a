// Package receipt is the ztlog receipt: a compact JWS that the decision path
// issues for an allow and that an execution broker verifies, offline, before
// it runs anything. The format is specified in receipt.md next to this file;
// golden vectors are in testdata/receipts/.
//
// Issuing (the service side) needs a Keyset; verifying (the broker side)
// needs only the issuer's JWKS and is pure: bytes and a time in, claims or an
// error out.
package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// Type is the JWS "typ" header of every receipt.
const Type = "ztlog-receipt+jwt"

// Version is the receipt version this package writes and reads (claim "ver").
const Version = 1

// MaxSize is the longest compact receipt Parse looks at (a witnessed
// receipt carries a checkpoint and an inclusion proof).
const MaxSize = 16384

// Witnessed is the "assurance" claim of a witnessed receipt.
const Witnessed = "witnessed"

// Claims are the JWT claims of a receipt. Every field is required.
type Claims struct {
	// Version is the receipt version, 1.
	Version int `json:"ver"`
	// Issuer is the log's origin.
	Issuer string `json:"iss"`
	// Subject is the actor: the authenticated SPIFFE ID of the agent.
	Subject string `json:"sub"`
	// Audience is the SPIFFE ID of the broker that may honour the receipt.
	Audience string `json:"aud"`
	// IssuedAt and Expiry are NumericDates (seconds since the epoch).
	IssuedAt int64 `json:"iat"`
	Expiry   int64 `json:"exp"`
	// ID is the one-time id: a broker honours each id at most once.
	ID string `json:"jti"`
	// ActionDigest names the action (contract.ActionDigest).
	ActionDigest string `json:"action_digest"`
	// Decision is the effect committed in the log: "allow".
	Decision string `json:"decision"`
	// LogIndex and LeafHash (standard base64 of 32 bytes) locate the
	// decision entry in the log.
	LogIndex uint64 `json:"log_index"`
	LeafHash string `json:"leaf_hash"`
	// PolicyHash is the hash of the policy version that decided.
	PolicyHash string `json:"policy_hash"`
	// CorrelationID is the request's correlation id.
	CorrelationID string `json:"cid"`
	// Assurance is "witnessed" in a witnessed receipt and absent in a
	// sequenced one (receipt.md, "Witnessed receipts").
	Assurance string `json:"assurance,omitempty"`
	// TLogProof, in a witnessed receipt, is the decision entry's C2SP
	// tlog-proof: its inclusion proof and a checkpoint, cosigned by the
	// witness quorum, that includes it.
	TLogProof string `json:"tlog_proof,omitempty"`
}

// Errors of Parse and Verify; they are wrapped with detail, test with
// errors.Is.
var (
	// ErrMalformed: not a receipt (encoding, header or claims).
	ErrMalformed = errors.New("receipt: malformed")
	// ErrUnknownKey: no key in the JWKS has the receipt's kid.
	ErrUnknownKey = errors.New("receipt: unknown key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("receipt: bad signature")
	// ErrExpired: the receipt is past its expiry (or not yet valid).
	ErrExpired = errors.New("receipt: expired")
	// ErrMismatch: a claim differs from what the verifier expected
	// (issuer, audience, action digest, decision).
	ErrMismatch = errors.New("receipt: claim mismatch")
	// ErrUnwitnessed: a witnessed receipt's checkpoint does not meet the
	// witness policy or does not include the decision, or there is no
	// witness policy to check it against.
	ErrUnwitnessed = errors.New("receipt: witness evidence does not verify")
)

// Receipt is a parsed, not yet verified, receipt.
type Receipt struct {
	// KeyID and Algorithm are from the protected header.
	KeyID     string
	Algorithm string
	Claims    Claims
	jws       *jose.JSONWebSignature
	payload   []byte
}

// algorithms are the JWS algorithms a receipt may use.
var algorithms = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}

// Parse reads a compact receipt and checks its form: the header (alg, kid,
// typ, no other members that change processing) and every claim. It does not
// verify the signature; see Verify.
func Parse(token string) (*Receipt, error) {
	if len(token) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(token), MaxSize)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS (want header.payload.signature)", ErrMalformed)
	}
	// The protected header must be exactly {alg, kid, typ}: read it before
	// go-jose does, so that no member that changes processing (jwk, jku,
	// x5c, crit, b64, ...) is ever honoured.
	rawHeader, err := base64.RawURLEncoding.DecodeString(token[:strings.IndexByte(token, '.')])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url: %w", ErrMalformed, err)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(rawHeader, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header is not a JSON object: %w", ErrMalformed, err)
	}
	for k := range hdr {
		if k != "alg" && k != "kid" && k != "typ" {
			return nil, fmt.Errorf("%w: header member %q is not allowed (only alg, kid, typ; keys come from the issuer's JWKS)", ErrMalformed, k)
		}
	}
	jws, err := jose.ParseSignedCompact(token, algorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature", ErrMalformed)
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: header has no kid", ErrMalformed)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, fmt.Errorf("%w: header typ is %q, want %q", ErrMalformed, typ, Type)
	}
	payload := jws.UnsafePayloadWithoutVerification()
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	return &Receipt{KeyID: h.KeyID, Algorithm: h.Algorithm, Claims: *c, jws: jws, payload: payload}, nil
}

func parseClaims(payload []byte) (*Claims, error) {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.DisallowUnknownFields()
	var c Claims
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: claims: trailing data", ErrMalformed)
	}
	// Every member must be present: decode again into a map and compare.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	for _, k := range []string{"ver", "iss", "sub", "aud", "iat", "exp", "jti", "action_digest", "decision", "log_index", "leaf_hash", "policy_hash", "cid"} {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%w: claim %q is missing", ErrMalformed, k)
		}
	}
	want := 13
	_, hasAssurance := m["assurance"]
	_, hasProof := m["tlog_proof"]
	switch {
	case hasAssurance && !hasProof:
		return nil, fmt.Errorf("%w: claim \"tlog_proof\" is missing: a witnessed receipt carries its evidence", ErrMalformed)
	case hasProof && !hasAssurance:
		return nil, fmt.Errorf("%w: claim \"assurance\" is missing: only a witnessed receipt has a tlog_proof", ErrMalformed)
	case hasAssurance:
		want = 15
	}
	if len(m) != want {
		return nil, fmt.Errorf("%w: claims have duplicate or unknown members", ErrMalformed)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Claims) validate() error {
	bad := func(claim, format string, args ...any) error {
		return fmt.Errorf("%w: claim %q: %s", ErrMalformed, claim, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Version != Version:
		return bad("ver", "version %d, this reader knows %d", c.Version, Version)
	case c.Issuer == "":
		return bad("iss", "empty")
	case c.ID == "" || len(c.ID) > 256:
		return bad("jti", "want 1 to 256 bytes")
	case c.Decision != "allow":
		return bad("decision", "want allow, got %q", c.Decision)
	case c.IssuedAt <= 0 || c.Expiry <= c.IssuedAt:
		return bad("exp", "must be after iat")
	case c.LogIndex > 1<<53-1:
		return bad("log_index", "larger than 2^53-1")
	case c.CorrelationID == "" || len(c.CorrelationID) > 256:
		return bad("cid", "want 1 to 256 bytes")
	}
	if _, err := spiffeid.FromString(c.Subject); err != nil {
		return bad("sub", "not a SPIFFE ID: %v", err)
	}
	if _, err := spiffeid.FromString(c.Audience); err != nil {
		return bad("aud", "not a SPIFFE ID: %v", err)
	}
	// One spelling only: DecodeString also takes embedded newlines and
	// non-zero padding bits, and a broker compares leaf hashes as text.
	if h, err := base64.StdEncoding.DecodeString(c.LeafHash); err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != c.LeafHash {
		return bad("leaf_hash", "want standard base64 of 32 bytes")
	}
	for claim, d := range map[string]string{"action_digest": c.ActionDigest, "policy_hash": c.PolicyHash} {
		if !validDigest(d) {
			return bad(claim, "want sha256:<64 lowercase hex digits>")
		}
	}
	if c.Assurance != "" || c.TLogProof != "" {
		if c.Assurance != Witnessed {
			// One spelling: a sequenced receipt has no assurance claim.
			return bad("assurance", "want %q (a sequenced receipt has no assurance claim), got %q", Witnessed, c.Assurance)
		}
		p, err := tlogproof.Parse([]byte(c.TLogProof))
		if err != nil {
			return bad("tlog_proof", "%v", err)
		}
		if p.Index != c.LogIndex {
			return bad("tlog_proof", "proves index %d, the receipt's log_index is %d", p.Index, c.LogIndex)
		}
	}
	return nil
}

// VerifyWitnessed checks a witnessed receipt's evidence, offline: its
// checkpoint verifies under pol (the log's key and the witness quorum), is
// the issuer's, and its inclusion proof leads from leaf_hash at log_index to
// the checkpoint's root. It returns the verified checkpoint.
func (c *Claims) VerifyWitnessed(pol *trustpolicy.Policy, now time.Time) (*trustpolicy.Checkpoint, error) {
	if c.Assurance != Witnessed {
		return nil, fmt.Errorf("%w: the receipt is not witnessed", ErrUnwitnessed)
	}
	if pol == nil {
		return nil, fmt.Errorf("%w: the receipt is witnessed but no witness policy was given to check it", ErrUnwitnessed)
	}
	p, err := tlogproof.Parse([]byte(c.TLogProof))
	if err != nil {
		return nil, fmt.Errorf("%w: claim \"tlog_proof\": %w", ErrMalformed, err)
	}
	cp, err := pol.VerifyCheckpoint(p.Checkpoint, trustpolicy.VerifyOptions{Now: now})
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrUnwitnessed, err)
	}
	if cp.Origin != c.Issuer {
		return nil, fmt.Errorf("%w: the checkpoint is of log %q, the receipt was issued by %q", ErrUnwitnessed, cp.Origin, c.Issuer)
	}
	lh, _ := base64.StdEncoding.DecodeString(c.LeafHash)
	if err := cp.VerifyInclusion(c.LogIndex, lh, p.Hashes); err != nil {
		return nil, fmt.Errorf("%w: decision %d is not proven in the checkpoint of size %d: %w", ErrUnwitnessed, c.LogIndex, cp.Size, err)
	}
	return cp, nil
}

func validDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, r := range h {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// Expect is what a verifier requires of a receipt.
type Expect struct {
	// Issuer is the log origin the verifier trusts. Required.
	Issuer string
	// Audience is the verifying broker's own SPIFFE ID. Required.
	Audience string
	// ActionDigest, when set, must equal the receipt's.
	ActionDigest string
	// Now is the verification time. Required (verification reads no clock).
	Now time.Time
	// Leeway is the clock skew tolerated on iat and exp. Default 0.
	Leeway time.Duration
	// Witnesses is the trust policy (log key, witnesses, quorum) a
	// witnessed receipt's checkpoint must meet. Without it a witnessed
	// receipt is refused (ErrUnwitnessed).
	Witnesses *trustpolicy.Policy
	// RequireWitnessed refuses a sequenced receipt.
	RequireWitnessed bool
	// DeferWitnessCheck is for the agent that asked for the receipt, not
	// for a broker that honours it: without Witnesses, a witnessed
	// receipt's form is checked (Parse: the assurance value, a tlog_proof
	// that parses and proves log_index) but its checkpoint is left to the
	// broker (receipt.md, step 7). A broker must never set it.
	DeferWitnessCheck bool
}

// Verify parses token and checks it against the issuer's JWKS: the key named
// by kid, its algorithm, the signature, issuer, audience, time, and (if
// expected) the action digest. It reads no clock and does no I/O. One-time
// use of the id is the broker's to enforce.
func Verify(token string, keys *jose.JSONWebKeySet, want Expect) (*Claims, error) {
	if want.Issuer == "" || want.Audience == "" || want.Now.IsZero() {
		return nil, errors.New("receipt: Verify needs Expect.Issuer, Expect.Audience and Expect.Now")
	}
	r, err := Parse(token)
	if err != nil {
		return nil, err
	}
	if err := r.VerifySignature(keys); err != nil {
		return nil, err
	}
	c := r.Claims
	now := want.Now.Unix()
	leeway := int64(want.Leeway / time.Second)
	switch {
	case c.Issuer != want.Issuer:
		return nil, fmt.Errorf("%w: issued by %q, want %q", ErrMismatch, c.Issuer, want.Issuer)
	case c.Audience != want.Audience:
		return nil, fmt.Errorf("%w: audience is %q, this broker is %q", ErrMismatch, c.Audience, want.Audience)
	case want.ActionDigest != "" && c.ActionDigest != want.ActionDigest:
		return nil, fmt.Errorf("%w: receipt is for action %s, the request is %s", ErrMismatch, c.ActionDigest, want.ActionDigest)
	case now >= c.Expiry+leeway:
		return nil, fmt.Errorf("%w: expired at %s", ErrExpired, time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case now+leeway < c.IssuedAt:
		return nil, fmt.Errorf("%w: issued in the future (%s)", ErrExpired, time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339))
	case c.Assurance == "" && want.RequireWitnessed:
		return nil, fmt.Errorf("%w: the receipt is sequenced only; this verifier requires a witnessed receipt", ErrUnwitnessed)
	}
	if c.Assurance == Witnessed && (want.Witnesses != nil || !want.DeferWitnessCheck) {
		if _, err := c.VerifyWitnessed(want.Witnesses, want.Now); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// VerifySignature checks the signature with the key named by the receipt's
// kid in keys; the key's declared algorithm must be the header's.
func (r *Receipt) VerifySignature(keys *jose.JSONWebKeySet) error {
	if keys == nil {
		return fmt.Errorf("%w: no JWKS", ErrUnknownKey)
	}
	found := keys.Key(r.KeyID)
	if len(found) != 1 {
		return fmt.Errorf("%w: kid %q is not in the JWKS (%d matches)", ErrUnknownKey, r.KeyID, len(found))
	}
	k := found[0]
	if !k.IsPublic() {
		return fmt.Errorf("%w: kid %q is a private key; a JWKS publishes public keys", ErrUnknownKey, r.KeyID)
	}
	if k.Algorithm != r.Algorithm {
		return fmt.Errorf("%w: kid %q is for %q, the receipt says %q", ErrSignature, r.KeyID, k.Algorithm, r.Algorithm)
	}
	if _, ok := k.Key.(ed25519.PublicKey); !ok && r.Algorithm == string(jose.EdDSA) {
		return fmt.Errorf("%w: kid %q is not an Ed25519 key", ErrSignature, r.KeyID)
	}
	if _, err := r.jws.Verify(k.Key); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}
