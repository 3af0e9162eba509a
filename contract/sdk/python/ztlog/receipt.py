"""ztlog receipts: compact JWS (contract/receipt/receipt.md), verified offline.

``verify(token, jwks, issuer=, audience=, action_digest=, now=, leeway=)``
is pure (no I/O, no clock) and runs the checks of the Go package
``contract/receipt`` in the same order, raising the same classes:

* ``ReceiptMalformed`` -- not a receipt (encoding, header or claims);
* ``UnknownKey`` -- not exactly one public JWKS key has the receipt's kid;
* ``BadSignature`` -- the key's alg differs, or the signature does not verify;
* ``ReceiptMismatch`` -- issuer, audience or action digest differ;
* ``ReceiptExpired`` -- past exp, or iat in the future (beyond the leeway).

A witnessed receipt (claims ``assurance`` and ``tlog_proof``) is checked
for form only: ``assurance`` is "witnessed", ``tlog_proof`` is a C2SP
tlog-proof@v1 for ``log_index``. Its checkpoint's cosignatures are the
broker's to verify under its trust policy (receipt.md, step 7); the agent
side holds none (testdata/sdk/README.md).
"""

import base64
import json
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .errors import BadSignature, ReceiptExpired, ReceiptMalformed, ReceiptMismatch, UnknownKey

TYPE = "ztlog-receipt+jwt"
VERSION = 1
MAX_SIZE = 16384
ALGORITHMS = ("EdDSA", "ES256")

CLAIMS = ("ver", "iss", "sub", "aud", "iat", "exp", "jti", "action_digest", "decision",
          "log_index", "leaf_hash", "policy_hash", "cid")
# A witnessed receipt has both of these, a sequenced one neither.
WITNESS_CLAIMS = ("assurance", "tlog_proof")
WITNESSED = "witnessed"
SEQUENCED = "sequenced"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_TLOG_PROOF_MAX_HASHES = 64
_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SPIFFE = re.compile(r"^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


def b64url_decode(s, what):
    """Unpadded base64url (RFC 7515), refusing any other character."""
    if not _B64URL.match(s) or len(s) % 4 == 1:
        raise ReceiptMalformed(f"{what} is not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate member {k!r}")
        d[k] = v
    return d


def strict_json(b):
    """Parse JSON refusing duplicate members and NaN/Infinity."""
    def bad_constant(c):
        raise ValueError(f"{c} is not JSON")
    return json.loads(b, object_pairs_hook=_no_duplicates, parse_constant=bad_constant)


def valid_spiffe_id(s):
    """True if s is a SPIFFE ID as go-spiffe's spiffeid.FromString accepts it."""
    if not isinstance(s, str) or not _SPIFFE.match(s):
        return False
    return all(seg not in (".", "..") for seg in s[len("spiffe://"):].split("/")[1:])


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _std_b64(s):
    """Standard base64 with padding, in its one canonical spelling, or None."""
    try:
        b = base64.b64decode(s, validate=True)
    except ValueError:
        return None
    return b if base64.b64encode(b).decode("ascii") == s else None


class TLogProof:
    """A parsed C2SP tlog-proof@v1 (syntax only; internal/tlogproof)."""

    def __init__(self, extra, index, hashes, checkpoint):
        self.extra = extra
        self.index = index
        self.hashes = hashes
        self.checkpoint = checkpoint


def parse_tlog_proof(text):
    """Read a tlog-proof@v1 as the Go parser (internal/tlogproof) does,
    refusing anything its formatter would not write. Raises ValueError."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise ValueError("no empty line before the checkpoint")
    if not checkpoint:
        raise ValueError("empty checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise ValueError(f"line 1: want {TLOG_PROOF_HEADER!r}")
    i, extra = 1, None
    if i < len(lines) and lines[i].startswith("extra "):
        extra = _std_b64(lines[i][len("extra "):])
        if extra is None:
            raise ValueError(f"line {i + 1}: extra is not standard base64")
        i += 1
    if i >= len(lines) or not lines[i].startswith("index "):
        raise ValueError(f'line {i + 1}: want "index <N>"')
    idx = lines[i][len("index "):]
    if not _DECIMAL.match(idx) or int(idx) >= 2**64:
        raise ValueError(f"line {i + 1}: index {idx!r} is not a decimal without leading zeros")
    hashes = []
    for j in range(i + 1, len(lines)):
        h = _std_b64(lines[j])
        if h is None or len(h) != 32:
            raise ValueError(f"line {j + 1}: not the base64 of a 32-byte hash")
        if len(hashes) == _TLOG_PROOF_MAX_HASHES:
            raise ValueError(f"line {j + 1}: more than {_TLOG_PROOF_MAX_HASHES} hashes")
        hashes.append(h)
    return TLogProof(extra, int(idx), hashes, checkpoint)


class Receipt:
    """A parsed, not yet verified, receipt."""

    def __init__(self, key_id, algorithm, claims, signing_input, signature):
        self.key_id = key_id
        self.algorithm = algorithm
        self.claims = claims
        self.signing_input = signing_input
        self.signature = signature


def parse(token):
    """Read a compact receipt and check its form: header and every claim.

    Does not verify the signature (see verify)."""
    if not isinstance(token, str):
        raise ReceiptMalformed("a receipt is a string (compact JWS)")
    if len(token) > MAX_SIZE:
        raise ReceiptMalformed(f"{len(token)} bytes, the limit is {MAX_SIZE}")
    if token.count(".") != 2:
        raise ReceiptMalformed("not a compact JWS (want header.payload.signature)")
    h64, p64, s64 = token.split(".")
    try:
        hdr = strict_json(b64url_decode(h64, "header"))
    except ValueError as e:
        raise ReceiptMalformed(f"header is not a JSON object: {e}") from e
    if not isinstance(hdr, dict):
        raise ReceiptMalformed("header is not a JSON object")
    for k in hdr:
        if k not in ("alg", "kid", "typ"):
            raise ReceiptMalformed(f"header member {k!r} is not allowed (only alg, kid, typ; keys come from the issuer's JWKS)")
    alg = hdr.get("alg")
    if alg not in ALGORITHMS:
        raise ReceiptMalformed(f"algorithm {alg!r} is not a receipt algorithm (EdDSA or ES256)")
    kid = hdr.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ReceiptMalformed("header has no kid")
    if hdr.get("typ") != TYPE:
        raise ReceiptMalformed(f"header typ is {hdr.get('typ')!r}, want {TYPE!r}")
    payload = b64url_decode(p64, "payload")
    signature = b64url_decode(s64, "signature")
    claims = parse_claims(payload)
    return Receipt(kid, alg, claims, (h64 + "." + p64).encode("ascii"), signature)


def parse_claims(payload):
    """The receipt's 13 claims (15 for a witnessed receipt), each checked for form."""
    try:
        c = strict_json(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise ReceiptMalformed(f"claims: {e}") from e
    if not isinstance(c, dict):
        raise ReceiptMalformed("claims are not a JSON object")
    for k in CLAIMS:
        if k not in c:
            raise ReceiptMalformed(f"claim {k!r} is missing")
    witnessed = "assurance" in c
    if witnessed and "tlog_proof" not in c:
        raise ReceiptMalformed("claim 'tlog_proof' is missing: a witnessed receipt carries its evidence")
    if "tlog_proof" in c and not witnessed:
        raise ReceiptMalformed("claim 'assurance' is missing: only a witnessed receipt has a tlog_proof")
    if len(c) != len(CLAIMS) + (len(WITNESS_CLAIMS) if witnessed else 0):
        extra = sorted(set(c) - set(CLAIMS) - set(WITNESS_CLAIMS))
        raise ReceiptMalformed(f"claims have unknown members {extra}")

    def bad(claim, why):
        return ReceiptMalformed(f"claim {claim!r}: {why}")

    for k in ("ver", "iat", "exp", "log_index"):
        if not _is_int(c[k]):
            raise bad(k, "want an integer")
    for k in ("iss", "sub", "aud", "jti", "action_digest", "decision", "leaf_hash", "policy_hash", "cid") + \
            (WITNESS_CLAIMS if witnessed else ()):
        if not isinstance(c[k], str):
            raise bad(k, "want a string")
    if c["ver"] != VERSION:
        raise bad("ver", f"version {c['ver']}, this reader knows {VERSION}")
    if not c["iss"]:
        raise bad("iss", "empty")
    if not 1 <= len(c["jti"].encode("utf-8")) <= 256:
        raise bad("jti", "want 1 to 256 bytes")
    if c["decision"] != "allow":
        raise bad("decision", f"want allow, got {c['decision']!r}")
    if c["iat"] <= 0 or c["exp"] <= c["iat"]:
        raise bad("exp", "must be after iat")
    if not 0 <= c["log_index"] <= 2**53 - 1:
        raise bad("log_index", "want 0 to 2^53-1")
    if not 1 <= len(c["cid"].encode("utf-8")) <= 256:
        raise bad("cid", "want 1 to 256 bytes")
    if not valid_spiffe_id(c["sub"]):
        raise bad("sub", "not a SPIFFE ID")
    if not valid_spiffe_id(c["aud"]):
        raise bad("aud", "not a SPIFFE ID")
    if not _valid_leaf_hash(c["leaf_hash"]):
        raise bad("leaf_hash", "want standard base64 of 32 bytes")
    for k in ("action_digest", "policy_hash"):
        if not _DIGEST.match(c[k]):
            raise bad(k, "want sha256:<64 lowercase hex digits>")
    if witnessed:
        if c["assurance"] != WITNESSED:
            # One spelling: a sequenced receipt has no assurance claim.
            raise bad("assurance", f"want {WITNESSED!r} (a sequenced receipt has no assurance claim), got {c['assurance']!r}")
        try:
            p = parse_tlog_proof(c["tlog_proof"])
        except ValueError as e:
            raise bad("tlog_proof", f"not a C2SP tlog-proof@v1: {e}") from e
        if p.index != c["log_index"]:
            raise bad("tlog_proof", f"proves index {p.index}, the receipt's log_index is {c['log_index']}")
    return c


def _valid_leaf_hash(s):
    try:
        h = base64.b64decode(s, validate=True)
    except ValueError:
        return False
    return len(h) == 32 and base64.b64encode(h).decode("ascii") == s


def _public_key(jwk, kid, alg):
    """The cryptography public key of a JWKS entry for alg."""
    if alg == "EdDSA":
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise BadSignature(f"kid {kid!r} is not an Ed25519 key")
        try:
            x = b64url_decode(jwk.get("x", ""), "x")
            return Ed25519PublicKey.from_public_bytes(x)
        except (ValueError, ReceiptMalformed) as e:
            raise UnknownKey(f"kid {kid!r}: not a valid Ed25519 key: {e}") from e
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise BadSignature(f"kid {kid!r} is not a P-256 key")
    try:
        x = int.from_bytes(b64url_decode(jwk.get("x", ""), "x"), "big")
        y = int.from_bytes(b64url_decode(jwk.get("y", ""), "y"), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (ValueError, ReceiptMalformed) as e:
        raise UnknownKey(f"kid {kid!r}: not a valid P-256 key: {e}") from e


def verify_signature(r, jwks):
    """Check r's signature with the one JWKS key named by its kid."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise UnknownKey("no JWKS")
    found = [k for k in keys if isinstance(k, dict) and k.get("kid") == r.key_id]
    if len(found) != 1:
        raise UnknownKey(f"kid {r.key_id!r} is not in the JWKS ({len(found)} matches)")
    jwk = found[0]
    if "d" in jwk:
        raise UnknownKey(f"kid {r.key_id!r} is a private key; a JWKS publishes public keys")
    if jwk.get("alg") != r.algorithm:
        raise BadSignature(f"kid {r.key_id!r} is for {jwk.get('alg')!r}, the receipt says {r.algorithm!r}")
    pub = _public_key(jwk, r.key_id, r.algorithm)
    try:
        if r.algorithm == "EdDSA":
            pub.verify(r.signature, r.signing_input)
        else:
            if len(r.signature) != 64:
                raise InvalidSignature()
            der = encode_dss_signature(int.from_bytes(r.signature[:32], "big"), int.from_bytes(r.signature[32:], "big"))
            pub.verify(der, r.signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise BadSignature("the signature does not verify") from e


def verify(token, jwks, *, issuer, audience, now, action_digest=None, leeway=0):
    """Verify a receipt against the issuer's JWKS (a dict) and return its claims.

    issuer is the trusted log origin, audience the broker's SPIFFE ID, now
    the verification time in seconds since the epoch, leeway the tolerated
    clock skew in seconds. action_digest, when given, must be the receipt's."""
    if not issuer or not audience or now is None:
        raise ValueError("receipt.verify needs issuer, audience and now")
    r = parse(token)
    verify_signature(r, jwks)
    c = r.claims
    now = int(now)
    leeway = int(leeway)
    if c["iss"] != issuer:
        raise ReceiptMismatch(f"issued by {c['iss']!r}, want {issuer!r}")
    if c["aud"] != audience:
        raise ReceiptMismatch(f"audience is {c['aud']!r}, this broker is {audience!r}")
    if action_digest and c["action_digest"] != action_digest:
        raise ReceiptMismatch(f"receipt is for action {c['action_digest']}, the request is {action_digest}")
    if now >= c["exp"] + leeway:
        raise ReceiptExpired(f"expired at {c['exp']} (now {now})")
    if now + leeway < c["iat"]:
        raise ReceiptExpired(f"issued in the future ({c['iat']}, now {now})")
    return c
