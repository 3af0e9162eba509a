"""Receipt checks beyond the shared vectors: ES256 (keys made here, never
stored), size and encoding limits."""

import base64
import json
import os

import pytest

pytest.importorskip("cryptography", reason="python3-cryptography is not installed (.ci/deps.d/python.sh)")
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

from conftest import REPO  # noqa: E402
from ztlog import receipt  # noqa: E402
from ztlog.errors import BadSignature, ReceiptMalformed  # noqa: E402

NOW = 1795255260
CLAIMS = {"ver": 1, "iss": "localhost/ztlog-dev", "sub": "spiffe://dev.ztlog.local/agent/demo",
          "aud": "spiffe://dev.ztlog.local/broker/demo", "iat": NOW - 60, "exp": NOW + 240, "jti": "r-1",
          "action_digest": "sha256:" + "12" * 32, "decision": "allow", "log_index": 3,
          "leaf_hash": base64.b64encode(bytes(32)).decode(), "policy_hash": "sha256:" + "02" * 32, "cid": "c-1"}


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def es256():
    priv = ec.generate_private_key(ec.SECP256R1())
    n = priv.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "es-test", "alg": "ES256", "use": "sig",
           "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
    return priv, jwk


def sign_es256(priv, claims, kid="es-test"):
    h = b64(json.dumps({"alg": "ES256", "kid": kid, "typ": receipt.TYPE}).encode())
    p = b64(json.dumps(claims).encode())
    r, s = decode_dss_signature(priv.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify(token, jwks):
    return receipt.verify(token, jwks, issuer=CLAIMS["iss"], audience=CLAIMS["aud"], now=NOW,
                          action_digest=CLAIMS["action_digest"], leeway=5)


def test_es256_verifies():
    priv, jwk = es256()
    assert verify(sign_es256(priv, CLAIMS), {"keys": [jwk]})["jti"] == "r-1"


def test_es256_other_key_refused():
    priv, jwk = es256()
    other, _ = es256()
    with pytest.raises(BadSignature):
        verify(sign_es256(other, CLAIMS), {"keys": [jwk]})


def test_es256_receipt_with_an_ed25519_jwks_entry_refused():
    priv, _ = es256()
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "es-test", "alg": "ES256", "x": b64(bytes(32))}
    with pytest.raises(BadSignature):
        verify(sign_es256(priv, CLAIMS), {"keys": [jwk]})


def test_oversized_token_refused():
    with pytest.raises(ReceiptMalformed):
        receipt.parse("a." + "b" * receipt.MAX_SIZE + ".c")


def test_non_base64url_refused():
    priv, jwk = es256()
    h, p, s = sign_es256(priv, CLAIMS).split(".")
    with pytest.raises(ReceiptMalformed):
        receipt.parse(f"{h}.{p}+.{s}")


def test_bool_is_not_an_integer_claim():
    priv, jwk = es256()
    with pytest.raises(ReceiptMalformed):
        verify(sign_es256(priv, dict(CLAIMS, ver=True)), {"keys": [jwk]})


@pytest.mark.parametrize("sid,ok", [
    ("spiffe://dev.ztlog.local/agent/demo", True), ("spiffe://dev.ztlog.local", True),
    ("spiffe://Dev.ztlog.local/a", False), ("spiffe://dev.ztlog.local/", False), ("spiffe://td/a/../b", False),
    ("spiffe://td/a//b", False), ("https://td/a", False), ("spiffe://td:8443/a", False), ("spiffe://td/a?x", False),
])
def test_spiffe_ids(sid, ok):
    assert receipt.valid_spiffe_id(sid) is ok


# testdata/receipts/witnessed (contract/receipt/receipt.md, "Example"):
# witnessed receipts for issuer example.com/ztlog-vectors.
WITNESSED_DIR = os.path.join(REPO, "testdata", "receipts", "witnessed")
with open(os.path.join(WITNESSED_DIR, "vectors.json"), encoding="utf-8") as _f:
    WITNESSED_INVALID = json.load(_f)


def _witnessed(name):
    with open(os.path.join(WITNESSED_DIR, name), encoding="utf-8") as f:
        return f.read().strip()


def _verify_witnessed(token):
    with open(os.path.join(REPO, "testdata", "receipts", "jwks.json"), encoding="utf-8") as f:
        jwks = json.load(f)
    return receipt.verify(token, jwks, issuer="example.com/ztlog-vectors",
                          audience="spiffe://dev.ztlog.local/broker/local", now=1795255260)


def test_witnessed_valid_claims():
    with open(os.path.join(WITNESSED_DIR, "valid.claims.json"), encoding="utf-8") as f:
        assert _verify_witnessed(_witnessed("valid.jws")) == json.load(f)


@pytest.mark.parametrize("v", [v for v in WITNESSED_INVALID if v["error"] == "malformed"], ids=lambda v: v["file"])
def test_witnessed_malformed_refused(v):
    with pytest.raises(ReceiptMalformed):
        _verify_witnessed(_witnessed(v["file"]))


@pytest.mark.parametrize("v", [v for v in WITNESSED_INVALID if v["error"] == "unwitnessed"], ids=lambda v: v["file"])
def test_witnessed_evidence_left_to_the_broker(v):
    # The agent side holds no witness policy: a well-formed receipt whose
    # cosignatures or inclusion proof do not hold is the broker's to refuse
    # (receipt.md step 7; testdata/sdk/README.md).
    assert _verify_witnessed(_witnessed(v["file"]))["assurance"] == "witnessed"


def test_tlog_proof_round_trip_of_the_spec_example():
    with open(os.path.join(REPO, "testdata", "tlog-proof", "spec-example.tlog-proof"), encoding="utf-8") as f:
        p = receipt.parse_tlog_proof(f.read())
    assert p.index == 73894
    assert len(p.hashes) == 5
    assert p.extra
    assert p.checkpoint.startswith("example.com/fancylog\n109482\n")
