"""RFC 8785 JSON Canonicalization Scheme (JCS), and the digests built on it.

``canonicalize(value)`` serializes a JSON value built of dict (str keys),
list/tuple, str, int, float, bool and None exactly as the Go side
(``contract.Canonicalize``, ``github.com/gowebpki/jcs``) does:

* numbers are IEEE-754 doubles written as ECMAScript's
  ``Number.prototype.toString`` writes them (integers beyond 2**53 are
  rounded to the nearest double, ``-0`` is ``0``, ``1.0`` is ``1``,
  exponent form from 1e21 and below 1e-6);
* object members are sorted by the UTF-16 code units of their names;
* strings escape only ``"``, ``\\`` and U+0000..U+001F.

NaN, infinities, lone surrogates and non-string keys are refused
(``ValueError``). The vectors in ``testdata/sdk/vectors.json``
(``args_digests``) pin the output down.
"""

import hashlib
import math

__all__ = ["canonicalize", "digest", "args_digest", "action_digest"]

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(s, out):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"JCS: string {s!r} is not valid Unicode (lone surrogate)") from e
    out.append('"')
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " ":
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')


def es_number(x):
    """The ECMAScript Number.prototype.toString form of the double x."""
    if isinstance(x, bool):
        raise ValueError("JCS: a bool is not a number")
    if isinstance(x, int):
        try:
            x = float(x)
        except OverflowError as e:
            raise ValueError("JCS: integer out of the range of a double") from e
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"JCS: {x} is not a JSON number")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    # repr gives the shortest digits that round-trip, as ECMAScript asks.
    mant, _, exp = repr(x).partition("e")
    exp = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    s = ip + fp
    lead = len(s) - len(s.lstrip("0"))
    digits = s.lstrip("0").rstrip("0")
    n = len(ip) + exp - lead  # value = 0.digits * 10**n
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    m = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{m}e{sign}{abs(e)}"


def _utf16_key(name):
    return name.encode("utf-16-be", "surrogatepass")


def _value(v, out, depth):
    if depth > 64:
        raise ValueError("JCS: nested deeper than 64 levels")
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        _string(v, out)
    elif isinstance(v, (int, float)):
        out.append(es_number(v))
    elif isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise ValueError(f"JCS: object member name {k!r} is not a string")
        out.append("{")
        for i, k in enumerate(sorted(v, key=_utf16_key)):
            if i:
                out.append(",")
            _string(k, out)
            out.append(":")
            _value(v[k], out, depth + 1)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _value(item, out, depth + 1)
        out.append("]")
    else:
        raise ValueError(f"JCS: {type(v).__name__} is not a JSON value")


def canonicalize(value):
    """The JCS serialization of value, as UTF-8 bytes."""
    out = []
    _value(value, out, 0)
    return "".join(out).encode("utf-8")


def digest(b):
    """'sha256:' and the lowercase hex SHA-256 of b."""
    return "sha256:" + hashlib.sha256(b).hexdigest()


def args_digest(args):
    """The args digest: the digest of the JCS form of the args object."""
    if not isinstance(args, dict):
        raise ValueError("args must be a dict (a JSON object of argument values)")
    return digest(canonicalize(args))


def action_digest(actor, action, resource, args_digest="", broker="", capabilities_digest=""):
    """The action digest of contract/entry.md ("Action digest")."""
    for name, v in (("actor", actor), ("action", action), ("resource", resource)):
        if not isinstance(v, str) or not v:
            raise ValueError(f"action digest: {name} must be a non-empty string")
    m = {"v": 1, "actor": actor, "action": action, "resource": resource,
         "args_digest": args_digest or "", "broker": broker or ""}
    if capabilities_digest:
        m["capabilities_digest"] = capabilities_digest
    return digest(canonicalize(m))
