"""Verification of one answer of POST /v1/actions: pure, no I/O, no clock.

``verify_answer`` runs the checks of the Go SDK's ``client.VerifyAnswer``
in the same order (testdata/sdk/README.md, "Error classes and the order of
checks") and returns a ``Decision`` only for a verified allow or a verified
committed deny.
"""

import json

from . import receipt as _receipt
from .errors import InconsistentAnswer, NoDecision, Reason

__all__ = ["Decision", "verify_answer", "parse_answer", "check_answer"]


class Decision:
    """A verified answer.

    allowed      True for a verified allow, False for a committed deny
    reasons      [Reason(code, message)]
    index        the decision entry's log index
    leaf_hash    its RFC 6962 leaf hash (standard base64)
    receipt      the compact JWS for the broker (allow only, else None)
    policy_hash  the policy version that decided
    claims       the verified receipt claims (allow only, else None)
    assurance    "sequenced" or "witnessed" for an allow (from its receipt), None
                 for a deny; a witnessed receipt's cosignatures are checked by
                 the broker, not here (testdata/sdk/README.md)
    action_digest, correlation_id, response (the answer body as a dict)
    """

    def __init__(self, response, allowed):
        log = response.get("log") or {}
        policy = response.get("policy") or {}
        self.response = response
        self.allowed = allowed
        self.reasons = [Reason(r.get("code", ""), r.get("message", "")) for r in response.get("reasons") or []]
        self.index = log.get("index", 0)
        self.leaf_hash = log.get("leaf_hash", "")
        self.policy_hash = policy.get("hash", "")
        self.correlation_id = response.get("correlation_id", "")
        self.receipt = None
        self.claims = None
        self.assurance = None
        self.action_digest = None

    def __repr__(self):
        return (f"Decision(allowed={self.allowed}, index={self.index}, reasons={self.reasons!r}, "
                f"policy_hash={self.policy_hash!r}, assurance={self.assurance!r})")


def _typed(obj, key, t, what, default):
    v = obj.get(key)
    if v is None:
        return default
    if not isinstance(v, t) or (t is int and isinstance(v, bool)):
        raise InconsistentAnswer(f"the answer is not a decision: {what} has the wrong type")
    return v


def parse_answer(status, body):
    """Read an answer: HTTP 200 carrying an allow or 403 carrying a deny,
    each with log evidence. body is bytes, str, or an already parsed value."""
    if status not in (200, 403):
        msg = f"HTTP {status}"
        try:
            e = json.loads(body) if isinstance(body, (bytes, str)) else body
            if isinstance(e, dict) and e.get("code"):
                msg += f" {e.get('code')} ({e.get('field', '')}): {e.get('message', '')}"
        except ValueError:
            pass
        raise NoDecision(msg)
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError as e:
            raise InconsistentAnswer(f"the answer is not a decision: {e}") from e
    if not isinstance(body, dict):
        raise InconsistentAnswer("the answer is not a decision (not a JSON object)")
    decision = _typed(body, "decision", str, "decision", "")
    _typed(body, "action_digest", str, "action_digest", "")
    _typed(body, "correlation_id", str, "correlation_id", "")
    _typed(body, "receipt", str, "receipt", "")
    reasons = _typed(body, "reasons", list, "reasons", [])
    for r in reasons:
        if not isinstance(r, dict) or not isinstance(r.get("code", ""), str) or not isinstance(r.get("message", ""), str):
            raise InconsistentAnswer("the answer is not a decision: reasons are not [{code, message}]")
    log = _typed(body, "log", dict, "log", {})
    index = _typed(log, "index", int, "log.index", 0)
    if index < 0:
        raise InconsistentAnswer("the answer is not a decision: log.index is negative")
    leaf = _typed(log, "leaf_hash", str, "log.leaf_hash", "")
    policy = _typed(body, "policy", dict, "policy", {})
    _typed(policy, "hash", str, "policy.hash", "")
    if status == 200 and decision != "allow":
        raise InconsistentAnswer(f"HTTP 200 but decision {decision!r}")
    if status == 403 and decision != "deny":
        raise InconsistentAnswer(f"HTTP 403 but decision {decision!r}")
    if not leaf:
        raise InconsistentAnswer("the answer carries no log evidence")
    return Decision(body, decision == "allow")


def check_answer(d, jwks, *, actor, issuer, broker, action_digest, correlation_id, now, leeway):
    """Check a parsed answer against the request and, for an allow, its
    receipt against the issuer's JWKS. Fills d.action_digest, d.receipt,
    d.claims and d.assurance."""
    r = d.response
    if r.get("action_digest", "") != action_digest:
        raise InconsistentAnswer(f"the answer is about action {r.get('action_digest')}, the SDK asked for {action_digest}")
    if r.get("correlation_id", "") != correlation_id:
        raise InconsistentAnswer(f"the answer's correlation id {r.get('correlation_id')!r} is not the request's {correlation_id!r}")
    if not d.allowed:
        d.action_digest = action_digest
        return d
    token = r.get("receipt") or ""
    if not token:
        raise InconsistentAnswer("an allow without a receipt")
    aud = broker or _receipt.parse(token).claims["aud"]
    claims = _receipt.verify(token, jwks, issuer=issuer, audience=aud, action_digest=action_digest,
                             now=now, leeway=leeway)
    if claims["log_index"] != d.index:
        raise InconsistentAnswer(f"the receipt is for log index {claims['log_index']}, the answer says {d.index}")
    if claims["leaf_hash"] != d.leaf_hash:
        raise InconsistentAnswer(f"the receipt is for leaf hash {claims['leaf_hash']}, the answer says {d.leaf_hash}")
    if claims["sub"] != actor:
        raise InconsistentAnswer(f"the receipt is for {claims['sub']}, this agent is {actor}")
    d.action_digest, d.receipt, d.claims = action_digest, token, claims
    d.assurance = _receipt.WITNESSED if claims.get("assurance") == _receipt.WITNESSED else _receipt.SEQUENCED
    return d


def verify_answer(status, body, jwks, *, actor, issuer, broker, action_digest, correlation_id, now, leeway=5):
    """Verify one answer (HTTP status and body) against what was asked.

    Returns a Decision, or raises a NoDecision subclass whose kind is the
    vectors' error class."""
    d = parse_answer(status, body)
    return check_answer(d, jwks, actor=actor, issuer=issuer, broker=broker, action_digest=action_digest,
                        correlation_id=correlation_id, now=now, leeway=leeway)
