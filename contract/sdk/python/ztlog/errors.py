"""Errors of the ztlog SDK. Every one of them means: do not act.

``Denied`` is the base: catching it catches every outcome that is not a
verified allow. A committed deny is a ``Denied`` with ``committed`` true
(and its ``index`` and ``reasons``); everything else is a ``NoDecision``
(index None) whose ``kind`` names the class the shared SDK vectors
(testdata/sdk/README.md) use.
"""

__all__ = ["Reason", "ZtlogError", "Denied", "NoDecision", "Ambiguous", "CircuitOpen", "InconsistentAnswer",
           "ReceiptError", "ReceiptMalformed", "UnknownKey", "BadSignature", "ReceiptExpired", "ReceiptMismatch"]


class Reason:
    """Why a decision was made: a code and a message."""

    __slots__ = ("code", "message")

    def __init__(self, code, message):
        self.code = code
        self.message = message

    def __eq__(self, other):
        return isinstance(other, Reason) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self):
        return hash((self.code, self.message))

    def __repr__(self):
        return f"Reason({self.code!r}, {self.message!r})"


class ZtlogError(Exception):
    """Base of every ztlog SDK error."""


class Denied(ZtlogError):
    """Not a verified allow: do not act.

    For a committed deny, decision is the verified Decision, index its log
    index and reasons its reasons; committed is True."""

    kind = "deny"

    def __init__(self, message=None, decision=None, correlation_id=None):
        self.decision = decision
        self.correlation_id = correlation_id or (decision.correlation_id if decision else None)
        if message is None and decision is not None:
            message = "denied"
            if decision.reasons:
                message += f": {decision.reasons[0].code}: {decision.reasons[0].message}"
            message += f" (log index {decision.index})"
        super().__init__(f"ztlog: {message}")

    @property
    def committed(self):
        return self.decision is not None and not self.decision.allowed

    @property
    def index(self):
        return self.decision.index if self.decision is not None else None

    @property
    def reasons(self):
        return list(self.decision.reasons) if self.decision is not None else []


class NoDecision(Denied):
    """No verified answer (transport error, timeout, refused, inconsistent
    or unverifiable answer). Nothing may be done."""

    kind = "no_decision"

    def __init__(self, message, correlation_id=None):
        super().__init__(f"no decision: {message}", correlation_id=correlation_id)


class Ambiguous(NoDecision):
    """The request was sent but the outcome is unknown: the decision may be
    committed. Not retried unless the client was told to."""

    kind = "ambiguous"


class CircuitOpen(NoDecision):
    """Too many recent calls without a decision; nothing was asked."""

    kind = "circuit_open"


class InconsistentAnswer(NoDecision):
    """The answer is not a well-formed decision, or does not match the
    request or its own receipt."""

    kind = "answer"


class ReceiptError(NoDecision):
    """The allow's receipt does not verify."""

    kind = "receipt"


class ReceiptMalformed(ReceiptError):
    kind = "malformed"


class UnknownKey(ReceiptError):
    kind = "unknown_key"


class BadSignature(ReceiptError):
    kind = "signature"


class ReceiptExpired(ReceiptError):
    kind = "expired"


class ReceiptMismatch(ReceiptError):
    kind = "mismatch"
