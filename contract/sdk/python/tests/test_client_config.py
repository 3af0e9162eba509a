"""Client construction refuses what cannot be authenticated, with a clear error."""

import pytest

pytest.importorskip("cryptography", reason="python3-cryptography is not installed (.ci/deps.d/python.sh)")
import ztlog


def test_plain_http_refused():
    with pytest.raises(ValueError, match="https://"):
        ztlog.Client("http://127.0.0.1:8443", svid="x", ca="y")


def test_no_trust_bundle_refused():
    with pytest.raises(ValueError, match="ca"):
        ztlog.Client("https://127.0.0.1:8443", svid="x")


def test_no_identity_refused():
    with pytest.raises(ValueError, match="identity"):
        ztlog.Client("https://127.0.0.1:8443", ca="y")


def test_missing_bundle_file_named(tmp_path):
    with pytest.raises(ValueError, match="trust bundle"):
        ztlog.Client("https://127.0.0.1:8443", svid="x", ca=str(tmp_path / "none.pem"))


def test_denied_catches_every_no_decision():
    for cls in (ztlog.NoDecision, ztlog.Ambiguous, ztlog.CircuitOpen, ztlog.InconsistentAnswer,
                ztlog.ReceiptMalformed, ztlog.UnknownKey, ztlog.BadSignature, ztlog.ReceiptExpired,
                ztlog.ReceiptMismatch):
        assert issubclass(cls, ztlog.Denied)
