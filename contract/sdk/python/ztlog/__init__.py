"""ztlog: the agent SDK of the ztlog evidence service.

    import ztlog
    c = ztlog.Client("https://127.0.0.1:8443", svid="D/dev/agent", ca="D/dev/bundle.pem",
                     broker="spiffe://dev.ztlog.local/broker/demo")
    out = c.guarded_call("demo.echo", "demo://hello", lambda d: run_tool(), args={"text": "hi"})

guarded_call runs fn only after an allow whose receipt verifies; every
other outcome raises ztlog.Denied (a committed deny) or one of its
subclasses (NoDecision, Ambiguous, CircuitOpen, receipt errors).
"""

from .aio import AsyncClient
from .answer import Decision, verify_answer
from .client import Client, a2a_action, mcp_server_tool_action, mcp_tool_action
from .errors import (Ambiguous, BadSignature, CircuitOpen, Denied, InconsistentAnswer, NoDecision, Reason,
                     ReceiptError, ReceiptExpired, ReceiptMalformed, ReceiptMismatch, UnknownKey, ZtlogError)
from .jcs import action_digest, args_digest, canonicalize

__version__ = "0.1.0"

__all__ = ["Client", "AsyncClient", "Decision", "verify_answer", "mcp_tool_action", "mcp_server_tool_action",
           "a2a_action",
           "Reason", "ZtlogError", "Denied", "NoDecision", "Ambiguous", "CircuitOpen", "InconsistentAnswer",
           "ReceiptError", "ReceiptMalformed", "UnknownKey", "BadSignature", "ReceiptExpired", "ReceiptMismatch",
           "canonicalize", "args_digest", "action_digest"]
