package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/internal/jcs"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	ita "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// PayloadType is the DSSE payloadType of every ztlog attestation.
const PayloadType = "application/vnd.in-toto+json"

// SubjectName is the name of the one subject of every ztlog statement: the
// action, identified by its action digest.
const SubjectName = "ztlog-action"

// Limits on what Verify reads.
const (
	// MaxEnvelope is the largest envelope, in bytes of JSON.
	MaxEnvelope = 48 << 10
	// MaxChain is the most certificates in a signer chain.
	MaxChain = 4
	// MaxCertificate is the largest certificate, in bytes of DER.
	MaxCertificate = 8 << 10
)

// Signed is a signed attestation: the DSSE envelope exactly as produced and
// the signer's X.509-SVID chain (DER, leaf first) that verifies it.
type Signed struct {
	Envelope []byte
	Chain    [][]byte
}

// ChainBase64 is the chain as the contract carries it: standard base64 of
// each certificate's DER, leaf first.
func (s *Signed) ChainBase64() []string { return EncodeChain(s.Chain) }

// EncodeChain encodes DER certificates as standard base64 strings.
func EncodeChain(chain [][]byte) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = base64.StdEncoding.EncodeToString(c)
	}
	return out
}

// DecodeChain decodes a chain carried as standard base64 strings.
func DecodeChain(chain []string) ([][]byte, error) {
	if len(chain) == 0 || len(chain) > MaxChain {
		return nil, fmt.Errorf("%w: chain: want 1 to %d certificates, got %d", ErrMalformed, MaxChain, len(chain))
	}
	out := make([][]byte, len(chain))
	for i, c := range chain {
		der, err := base64.StdEncoding.Strict().DecodeString(c)
		if err != nil || len(der) == 0 {
			return nil, fmt.Errorf("%w: chain[%d]: not standard base64 DER", ErrMalformed, i)
		}
		out[i] = der
	}
	return out, nil
}

// Digest is "sha256:" and the hex SHA-256 of b.
func Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// KeyID is the DSSE keyid of a signature made with the key of the
// X.509-SVID whose leaf certificate is leaf: the Digest of the leaf's DER.
func KeyID(leaf *x509.Certificate) string { return Digest(leaf.Raw) }

// predicate is implemented by RuntimeContext and BrokerResult.
type predicate interface{ Validate() error }

// SignRuntimeContext signs a runtime-context statement about the action
// with the given action digest, with svid's key.
func SignRuntimeContext(ctx context.Context, svid *x509svid.SVID, actionDigest string, p *RuntimeContext) (*Signed, error) {
	return sign(ctx, svid, RuntimeContextType, actionDigest, p)
}

// SignBrokerResult signs a broker-result statement about the action with
// the given action digest, with svid's key.
func SignBrokerResult(ctx context.Context, svid *x509svid.SVID, actionDigest string, p *BrokerResult) (*Signed, error) {
	return sign(ctx, svid, BrokerResultType, actionDigest, p)
}

// Statement builds the in-toto Statement v1 of a predicate about an action.
func Statement(predicateType, actionDigest string, p any) (*ita.Statement, error) {
	if err := checkDigest("subject", actionDigest, true); err != nil {
		return nil, err
	}
	raw, err := stdjson.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("attest: encode predicate: %w", err)
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("attest: predicate as a protobuf Struct: %w", err)
	}
	s := &ita.Statement{
		Type: ita.StatementTypeUri,
		Subject: []*ita.ResourceDescriptor{{
			Name:   SubjectName,
			Digest: map[string]string{"sha256": strings.TrimPrefix(actionDigest, "sha256:")},
		}},
		PredicateType: predicateType,
		Predicate:     st,
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("attest: statement: %w", err)
	}
	return s, nil
}

// statementPayload is Payload(Statement(predicateType, actionDigest, p)),
// byte for byte, without the protobuf round trip (which took 60% of a
// broker result's signing, BenchmarkSignBrokerResult): the statement's
// JSON built directly, then put in JCS form. The two agree because JCS
// re-serializes every string and number (numbers through float64, as
// protojson's Struct holds them) and sorts every object, and the
// predicate's members are the same encoding/json output in both;
// TestStatementPayloadMatchesProtojson and FuzzStatementPayload hold
// them to it.
func statementPayload(predicateType, actionDigest string, p any) ([]byte, error) {
	if err := checkDigest("subject", actionDigest, true); err != nil {
		return nil, err
	}
	if predicateType == "" {
		return nil, errors.New("attest: statement: no predicate type")
	}
	pred, err := stdjson.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("attest: encode predicate: %w", err)
	}
	if len(pred) == 0 || pred[0] != '{' {
		return nil, errors.New("attest: predicate as a protobuf Struct: not a JSON object")
	}
	type subject struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	raw, err := stdjson.Marshal(struct {
		Type          string             `json:"_type"`
		Subject       []subject          `json:"subject"`
		PredicateType string             `json:"predicateType"`
		Predicate     stdjson.RawMessage `json:"predicate"`
	}{ita.StatementTypeUri, []subject{{SubjectName, map[string]string{"sha256": strings.TrimPrefix(actionDigest, "sha256:")}}}, predicateType, pred})
	if err != nil {
		return nil, fmt.Errorf("attest: serialize statement: %w", err)
	}
	return jcs.Canonicalize(raw)
}

// Payload is the DSSE payload of a statement: its protojson serialization
// in RFC 8785 (JCS) canonical form, so that the signed bytes are stable.
func Payload(s *ita.Statement) ([]byte, error) {
	b, err := protojson.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("attest: serialize statement: %w", err)
	}
	return jcs.Canonicalize(b)
}

func sign(ctx context.Context, svid *x509svid.SVID, predicateType, actionDigest string, p predicate) (*Signed, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return nil, errors.New("attest: no X.509-SVID to sign with")
	}
	signer, err := newSVIDSigner(svid.PrivateKey, svid.Certificates[0])
	if err != nil {
		return nil, err
	}
	payload, err := statementPayload(predicateType, actionDigest, p)
	if err != nil {
		return nil, err
	}
	es, err := dsse.NewEnvelopeSigner(signer)
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("attest: sign: %w", err)
	}
	b, err := stdjson.Marshal(env)
	if err != nil {
		return nil, err
	}
	chain := make([][]byte, len(svid.Certificates))
	for i, c := range svid.Certificates {
		chain[i] = c.Raw
	}
	return &Signed{Envelope: b, Chain: chain}, nil
}

// svidKey signs and verifies DSSE PAE bytes with an X.509-SVID key:
// ECDSA (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512;
// ASN.1 DER signatures) or Ed25519 (over the PAE itself).
type svidKey struct {
	priv  crypto.Signer
	pub   crypto.PublicKey
	keyID string
}

func newSVIDSigner(priv crypto.Signer, leaf *x509.Certificate) (*svidKey, error) {
	k, err := newSVIDVerifier(leaf)
	if err != nil {
		return nil, err
	}
	k.priv = priv
	return k, nil
}

func newSVIDVerifier(leaf *x509.Certificate) (*svidKey, error) {
	switch pub := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if _, err := ecdsaHash(pub.Curve); err != nil {
			return nil, err
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: the signer's key is %T; attestations are signed with ECDSA or Ed25519 SVID keys", ErrChain, leaf.PublicKey)
	}
	return &svidKey{pub: leaf.PublicKey, keyID: KeyID(leaf)}, nil
}

func ecdsaHash(c elliptic.Curve) (crypto.Hash, error) {
	switch c {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	case elliptic.P521():
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: unsupported ECDSA curve %s", ErrChain, c.Params().Name)
}

func (k *svidKey) KeyID() (string, error)   { return k.keyID, nil }
func (k *svidKey) Public() crypto.PublicKey { return k.pub }

func (k *svidKey) Sign(_ context.Context, data []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errors.New("attest: verifier cannot sign")
	}
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		h, _ := ecdsaHash(pub.Curve)
		d := h.New()
		d.Write(data)
		return k.priv.Sign(rand.Reader, d.Sum(nil), h)
	default:
		return k.priv.Sign(rand.Reader, data, crypto.Hash(0))
	}
}

func (k *svidKey) Verify(_ context.Context, data, sig []byte) error {
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		h, _ := ecdsaHash(pub.Curve)
		d := h.New()
		d.Write(data)
		if !ecdsa.VerifyASN1(pub, d.Sum(nil), sig) {
			return ErrSignature
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, data, sig) {
			return ErrSignature
		}
	}
	return nil
}

// verifyPAE is Verify over dsse.PAE(payloadType, payload). For ECDSA the
// encoding is hashed as it is written ("DSSEv1", the type's length, the
// type, the payload's length, the payload, separated by spaces) instead of
// being built first: a whole-log audit verifies one per entry.
func (k *svidKey) verifyPAE(payloadType string, payload, sig []byte) error {
	pub, ok := k.pub.(*ecdsa.PublicKey)
	if !ok {
		return k.Verify(context.Background(), dsse.PAE(payloadType, payload), sig)
	}
	h, _ := ecdsaHash(pub.Curve)
	d := h.New()
	var head [96]byte
	b := append(head[:0], "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	d.Write(b)
	d.Write(payload)
	var sum [64]byte
	if !ecdsa.VerifyASN1(pub, d.Sum(sum[:0]), sig) {
		return ErrSignature
	}
	return nil
}

// Verified is an attestation whose signature and signer chain verified.
type Verified struct {
	// Signer is the SPIFFE ID of the X.509-SVID that signed.
	Signer spiffeid.ID
	// Chain is the verified chain, leaf first.
	Chain []*x509.Certificate
	// Statement is the signed statement. Its Predicate message is not
	// filled when the payload is in ztlog's one form (the predicate is in
	// Predicate, as signed).
	Statement *ita.Statement
	// Subject is the action digest the statement is about.
	Subject string
	// Predicate is the predicate's JSON exactly as in the payload.
	Predicate []byte
	// Payload is the signed payload, exactly as signed.
	Payload []byte
}

// envelope is the DSSE envelope with exactly one signature.
type envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []signature `json:"signatures"`
}

type signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Verify checks a DSSE envelope of an in-toto Statement signed by an
// X.509-SVID: the envelope's form and payloadType, the chain against
// bundles at now (so an expired SVID fails), the signature over the
// payload exactly as received, the statement's form, and that its
// predicate type is predicateType. Signer identity, subject and the
// predicate itself are the caller's (see VerifyRuntimeContext,
// VerifyBrokerResult). Pure: no clock, no I/O.
func Verify(ctx context.Context, rawEnvelope []byte, chain [][]byte, bundles x509bundle.Source, now time.Time, predicateType string) (*Verified, error) {
	return (*ChainCache)(nil).Verify(ctx, rawEnvelope, chain, bundles, now, predicateType)
}

// checkChainSize checks the chain's limits: 1 to MaxChain certificates of
// at most MaxCertificate bytes each.
func checkChainSize(chain [][]byte) error {
	if len(chain) == 0 || len(chain) > MaxChain {
		return fmt.Errorf("%w: want 1 to %d certificates in the signer chain, got %d", ErrMalformed, MaxChain, len(chain))
	}
	for i, der := range chain {
		if len(der) > MaxCertificate {
			return fmt.Errorf("%w: chain[%d] is %d bytes, the limit is %d", ErrMalformed, i, len(der), MaxCertificate)
		}
	}
	return nil
}

// parseChain parses a chain within checkChainSize's limits.
func parseChain(chain [][]byte) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: chain[%d]: %w", ErrChain, i, err)
		}
		certs[i] = c
	}
	return certs, nil
}

// verifyChain verifies parsed certificates as an X.509-SVID against
// bundles at now: the SPIFFE ID and the first verified path (leaf to
// authority).
func verifyChain(certs []*x509.Certificate, bundles x509bundle.Source, now time.Time) (spiffeid.ID, []*x509.Certificate, error) {
	id, verified, err := x509svid.Verify(certs, bundles, x509svid.WithTime(now))
	if err != nil {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: %w", ErrChain, err)
	}
	var path []*x509.Certificate
	if len(verified) > 0 {
		path = verified[0]
	}
	return id, path, nil
}

// VerifyWithSigner is Verify for a signer chain the caller has already
// verified (x509svid.Verify against the trust bundle at the time that
// matters): id is the SPIFFE ID it proved and leaf its leaf certificate.
// Everything else — the envelope's form, the keyid, the signature over
// the payload as received, the statement — is checked as Verify does. It
// lets a verifier of many entries signed with one SVID verify the chain
// once (verifier/attestation caches it).
func VerifyWithSigner(ctx context.Context, rawEnvelope []byte, id spiffeid.ID, leaf *x509.Certificate, predicateType string) (*Verified, error) {
	d, err := decodeEnvelope(rawEnvelope)
	if err != nil {
		return nil, err
	}
	return verifySigned(ctx, d, id, leaf, []*x509.Certificate{leaf}, predicateType)
}

// decoded is an envelope in the one form this package accepts, with its
// payload and signature decoded.
type decoded struct {
	env     envelope
	payload []byte
	sig     []byte
}

func decodeEnvelope(rawEnvelope []byte) (*decoded, error) {
	if len(rawEnvelope) > MaxEnvelope {
		return nil, fmt.Errorf("%w: envelope is %d bytes, the limit is %d", ErrMalformed, len(rawEnvelope), MaxEnvelope)
	}
	d := new(decoded)
	env := &d.env
	if err := json.Unmarshal(rawEnvelope, env, json.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%w: envelope: %w", ErrMalformed, err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: payloadType is %q, want %q", ErrMalformed, text.Cut(env.PayloadType, 80), PayloadType)
	}
	if len(env.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signature, got %d", ErrMalformed, len(env.Signatures))
	}
	var err error
	if d.payload, err = base64.StdEncoding.Strict().DecodeString(env.Payload); err != nil || len(d.payload) == 0 {
		return nil, fmt.Errorf("%w: payload is not standard base64", ErrMalformed)
	}
	if d.sig, err = base64.StdEncoding.Strict().DecodeString(env.Signatures[0].Sig); err != nil {
		return nil, fmt.Errorf("%w: signature is not standard base64", ErrMalformed)
	}
	return d, nil
}

// verifySigned checks the keyid and the one signature over DSSE's
// pre-authentication encoding of the payload as received (dsse.PAE, the
// bytes dsse's signer signed), then reads the statement. The envelope was
// decoded strictly (standard base64 only, one signature), so the
// signature is verified here directly rather than through dsse's
// EnvelopeVerifier, which would decode both again and accepts URL-safe
// base64 too.
func verifySigned(ctx context.Context, d *decoded, id spiffeid.ID, leaf *x509.Certificate, path []*x509.Certificate, predicateType string) (*Verified, error) {
	key, err := newSVIDVerifier(leaf)
	if err != nil {
		return nil, err
	}
	if kid := d.env.Signatures[0].KeyID; kid != key.keyID {
		return nil, fmt.Errorf("%w: keyid %q is not the signer certificate's %s", ErrSignature, text.Cut(kid, 80), key.keyID)
	}
	if err := key.verifyPAE(d.env.PayloadType, d.payload, d.sig); err != nil {
		return nil, fmt.Errorf("%w with the key of signer certificate %s", err, key.keyID)
	}
	st, pred, err := parseStatement(d.payload, predicateType)
	if err != nil {
		return nil, err
	}
	return &Verified{Signer: id, Statement: st, Predicate: pred, Payload: d.payload, Chain: path,
		Subject: "sha256:" + st.Subject[0].Digest["sha256"]}, nil
}

// parseStatement reads a signed payload: an in-toto Statement v1 with one
// subject (SubjectName, a sha256 digest) and the given predicate type. It
// returns the statement and the predicate's JSON as it appears in payload.
func parseStatement(payload []byte, predicateType string) (*ita.Statement, []byte, error) {
	if st, pred, ok := parseStatementFast(payload, predicateType); ok {
		return st, pred, nil
	}
	var st ita.Statement
	if err := protojson.Unmarshal(payload, &st); err != nil {
		return nil, nil, fmt.Errorf("%w: statement: %w", ErrMalformed, err)
	}
	if st.GetType() != ita.StatementTypeUri {
		return nil, nil, fmt.Errorf("%w: _type is %q, want %q", ErrMalformed, text.Cut(st.GetType(), 80), ita.StatementTypeUri)
	}
	if err := st.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: statement: %w", ErrMalformed, err)
	}
	if st.GetPredicateType() != predicateType {
		return nil, nil, fmt.Errorf("%w: predicateType is %q, want %q", ErrMalformed, text.Cut(st.GetPredicateType(), 120), predicateType)
	}
	if len(st.Subject) != 1 {
		return nil, nil, fmt.Errorf("%w: want exactly one subject (the action), got %d", ErrMalformed, len(st.Subject))
	}
	sub := st.Subject[0]
	if sub.GetName() != SubjectName || len(sub.GetDigest()) != 1 || !text.IsLowerHex(sub.GetDigest()["sha256"], 64) {
		return nil, nil, fmt.Errorf("%w: the subject must be {name: %q, digest: {sha256: <hex>}}", ErrMalformed, SubjectName)
	}
	// The predicate's bytes as signed (protojson accepted the document,
	// so there is exactly one "predicate" member).
	var outer struct {
		Predicate jsontext.Value `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &outer); err != nil || len(outer.Predicate) == 0 {
		return nil, nil, fmt.Errorf("%w: statement has no predicate object", ErrMalformed)
	}
	return &st, bytes.Clone(outer.Predicate), nil
}

// fastStatement is the one form of a ztlog statement, member for member:
// a payload that decodes strictly into it is one protojson reads the same
// way (same members, no unknown or duplicate ones), so parseStatement can
// take it without protojson's cost (a whole-log audit parses one per
// entry). Anything else goes the protojson way.
type fastStatement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string         `json:"predicateType"`
	Predicate     jsontext.Value `json:"predicate"`
}

// parseStatementFast is parseStatement for a payload in the one form; ok
// is false for anything else (which parseStatement then reads with
// protojson, to accept or refuse it exactly as before). The returned
// Statement has no Predicate message: the predicate is in the bytes.
func parseStatementFast(payload []byte, predicateType string) (*ita.Statement, []byte, bool) {
	var f fastStatement
	if err := json.Unmarshal(payload, &f, json.RejectUnknownMembers(true)); err != nil {
		return nil, nil, false
	}
	if f.Type != ita.StatementTypeUri || f.PredicateType != predicateType || len(f.Subject) != 1 ||
		f.Subject[0].Name != SubjectName || len(f.Subject[0].Digest) != 1 || !text.IsLowerHex(f.Subject[0].Digest["sha256"], 64) ||
		f.Predicate.Kind() != '{' {
		return nil, nil, false
	}
	st := &ita.Statement{Type: f.Type, PredicateType: f.PredicateType,
		Subject: []*ita.ResourceDescriptor{{Name: f.Subject[0].Name, Digest: f.Subject[0].Digest}}}
	return st, []byte(f.Predicate), true
}

// decodePredicate decodes a predicate strictly (no unknown or duplicate
// members) and validates it.
func decodePredicate(raw []byte, p predicate) error {
	if err := json.Unmarshal(raw, p, json.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("%w: predicate: %w", ErrMalformed, err)
	}
	return p.Validate()
}

// ParseRuntimeContext decodes and validates a runtime-context predicate.
func ParseRuntimeContext(raw []byte) (*RuntimeContext, error) {
	var p RuntimeContext
	if err := decodePredicate(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ParseBrokerResult decodes and validates a broker-result predicate.
func ParseBrokerResult(raw []byte) (*BrokerResult, error) {
	var p BrokerResult
	if err := decodePredicate(raw, &p); err != nil {
		return nil, err
	}
	if err := brokerResultPresent(raw); err != nil {
		return nil, err
	}
	return &p, nil
}

// brokerResultPresent checks the required members whose zero value is a
// valid value (a number, the applied list): decoding leaves a missing one
// at zero, and Validate cannot tell it from a zero that was signed. The
// schema (schema/broker-result.v1.schema.json) requires them.
func brokerResultPresent(raw []byte) error {
	type output struct {
		Size *int64 `json:"size"`
	}
	var q struct {
		Decision struct {
			Index *uint64 `json:"index"`
		} `json:"decision"`
		Exit *struct {
			Status *int `json:"status"`
		} `json:"exit"`
		Outputs struct {
			Stdout output   `json:"stdout"`
			Stderr output   `json:"stderr"`
			Files  []output `json:"files"`
		} `json:"outputs"`
		Sandbox struct {
			Applied *[]string `json:"applied"`
		} `json:"sandbox"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		return fmt.Errorf("%w: predicate: %w", ErrMalformed, err)
	}
	missing := ""
	switch {
	case q.Decision.Index == nil:
		missing = "decision.index"
	case q.Exit != nil && q.Exit.Status == nil:
		missing = "exit.status"
	case q.Outputs.Stdout.Size == nil:
		missing = "outputs.stdout.size"
	case q.Outputs.Stderr.Size == nil:
		missing = "outputs.stderr.size"
	case q.Sandbox.Applied == nil:
		missing = "sandbox.applied"
	}
	for i, f := range q.Outputs.Files {
		if missing == "" && f.Size == nil {
			missing = fmt.Sprintf("outputs.files[%d].size", i)
		}
	}
	if missing != "" {
		return fmt.Errorf("%w: predicate: %s is required", ErrMalformed, missing)
	}
	return nil
}

// Expect is what a verifier requires of an attestation besides a valid
// signature and chain.
type Expect struct {
	// Now is the verification time (required; verification reads no clock).
	Now time.Time
	// Signer is the SPIFFE ID that must have signed (required).
	Signer spiffeid.ID
	// ActionDigest is the action the statement must be about (required).
	ActionDigest string
	// Skew is the clock skew tolerated on a runtime context's validity
	// window (default 0).
	Skew time.Duration
}

func (e Expect) check(v *Verified) error {
	if v.Signer != e.Signer {
		return fmt.Errorf("%w: signed by %s, want %s", ErrSigner, v.Signer, e.Signer)
	}
	if v.Subject != e.ActionDigest {
		return fmt.Errorf("%w: the statement is about %s, this action is %s", ErrSubject, v.Subject, e.ActionDigest)
	}
	return nil
}

func (e Expect) valid() error {
	if e.Now.IsZero() || e.Signer.IsZero() || e.ActionDigest == "" {
		return errors.New("attest: Expect needs Now, Signer and ActionDigest")
	}
	return nil
}

// VerifyRuntimeContext verifies an agent's runtime-context attestation:
// Verify, then the signer is want.Signer (the authenticated actor), the
// subject is want.ActionDigest, and want.Now is inside the predicate's
// validity window.
func VerifyRuntimeContext(ctx context.Context, rawEnvelope []byte, chain [][]byte, bundles x509bundle.Source, want Expect) (*RuntimeContext, *Verified, error) {
	return (*ChainCache)(nil).VerifyRuntimeContext(ctx, rawEnvelope, chain, bundles, want)
}

// VerifyRuntimeContext is the package's VerifyRuntimeContext with the
// signer chain's verification remembered in c (see ChainCache.Verify).
func (c *ChainCache) VerifyRuntimeContext(ctx context.Context, rawEnvelope []byte, chain [][]byte, bundles x509bundle.Source, want Expect) (*RuntimeContext, *Verified, error) {
	if err := want.valid(); err != nil {
		return nil, nil, err
	}
	v, err := c.Verify(ctx, rawEnvelope, chain, bundles, want.Now, RuntimeContextType)
	if err != nil {
		return nil, nil, err
	}
	p, err := CheckRuntimeContext(v, want)
	return p, v, err
}

// CheckRuntimeContext is the part of VerifyRuntimeContext after the
// signature: the signer, the subject, the predicate and its validity
// window at want.Now. v must come from Verify or VerifyWithSigner with
// RuntimeContextType.
func CheckRuntimeContext(v *Verified, want Expect) (*RuntimeContext, error) {
	if err := want.valid(); err != nil {
		return nil, err
	}
	if err := want.check(v); err != nil {
		return nil, err
	}
	p, err := ParseRuntimeContext(v.Predicate)
	if err != nil {
		return nil, err
	}
	iat, exp, _ := p.window()
	switch {
	case want.Now.Add(want.Skew).Before(iat):
		return nil, fmt.Errorf("%w: issued at %s, in the future", ErrExpired, p.IssuedAt)
	case !want.Now.Before(exp.Add(want.Skew)):
		return nil, fmt.Errorf("%w: expired at %s", ErrExpired, p.ExpiresAt)
	}
	return p, nil
}

// VerifyBrokerResult verifies a broker's result attestation: Verify, then
// the signer is want.Signer and the subject is want.ActionDigest.
func VerifyBrokerResult(ctx context.Context, rawEnvelope []byte, chain [][]byte, bundles x509bundle.Source, want Expect) (*BrokerResult, *Verified, error) {
	return (*ChainCache)(nil).VerifyBrokerResult(ctx, rawEnvelope, chain, bundles, want)
}

// VerifyBrokerResult is the package's VerifyBrokerResult with the signer
// chain's verification remembered in c (see ChainCache.Verify).
func (c *ChainCache) VerifyBrokerResult(ctx context.Context, rawEnvelope []byte, chain [][]byte, bundles x509bundle.Source, want Expect) (*BrokerResult, *Verified, error) {
	if err := want.valid(); err != nil {
		return nil, nil, err
	}
	v, err := c.Verify(ctx, rawEnvelope, chain, bundles, want.Now, BrokerResultType)
	if err != nil {
		return nil, nil, err
	}
	p, err := CheckBrokerResult(v, want)
	return p, v, err
}

// CheckBrokerResult is the part of VerifyBrokerResult after the
// signature: the signer, the subject and the predicate. v must come from
// Verify or VerifyWithSigner with BrokerResultType.
func CheckBrokerResult(v *Verified, want Expect) (*BrokerResult, error) {
	if err := want.valid(); err != nil {
		return nil, err
	}
	if err := want.check(v); err != nil {
		return nil, err
	}
	return ParseBrokerResult(v.Predicate)
}
