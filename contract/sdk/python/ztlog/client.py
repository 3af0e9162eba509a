"""The ztlog agent SDK for Python: ask whether you may act, act only on a
verified allow. Mirrors the Go SDK (contract/client).

Fail closed. ``decide`` returns a Decision only for an answer it verified:
an allow is HTTP 200 whose receipt verifies against the issuer's JWKS
(Ed25519/ES256 signature, issuer, audience, expiry), names the action
digest the SDK computed itself from what it asked, and the log index, leaf
hash and agent the answer gives; a deny is HTTP 403 with a committed index.
Anything else raises a ``NoDecision`` (a ``Denied``), and ``guarded_call``
never runs fn.

Retries. Every attempt of one call carries the same correlation id. A call
is retried (exponential backoff with jitter) only when nothing can have been
committed: the connection failed before the request was sent, or the
service answered 503 log_pushback or shutting_down. When the outcome is
ambiguous (sent, answer lost; other 503s) the SDK raises ``Ambiguous`` and
does not ask again, unless ``retry_ambiguous=True``.

Circuit breaker. After ``breaker_failures`` consecutive calls without a
decision the breaker opens for ``breaker_cooldown`` seconds: calls raise
``CircuitOpen`` at once. Then one trial call goes through; a decision closes
the breaker, another failure opens it again.
"""

import http.client
import json
import os
import random
import ssl
import threading
import time
import uuid
from urllib.parse import urlsplit

from cryptography import x509

from . import jcs
from . import receipt as _receipt
from .answer import check_answer, parse_answer
from .errors import Ambiguous, CircuitOpen, Denied, NoDecision, UnknownKey

__all__ = ["Client", "mcp_tool_action", "mcp_server_tool_action", "a2a_action"]

CORRELATION_HEADER = "X-Correlation-ID"
USER_TOKEN_HEADER = "X-ZT-User-Token"
LEEWAY = 5  # seconds of clock skew tolerated on a receipt's iat and exp
MAX_ANSWER = 1 << 20


def mcp_tool_action(tool):
    """The action name of calling an MCP tool: "mcp.tool.<tool>" (as the Go SDK's MCPToolAction).
    For a tool of a named MCP server use mcp_server_tool_action."""
    return "mcp.tool." + tool


def mcp_server_tool_action(server, tool):
    """The action name of calling tool on the MCP server server: "mcp.tool.<server>.<tool>",
    what the MCP gateway (zt mcp) decides for that call (as the Go SDK's MCPServerToolAction).
    server is one segment (no dots)."""
    return mcp_tool_action(server + "." + tool)


def a2a_action(agent):
    """The action name of sending a message to an A2A agent: "a2a.<agent>.send_message" (as the Go SDK's A2AAction)."""
    return "a2a." + agent + ".send_message"


class _PeerRefused(Exception):
    pass


def _spiffe_ids(der):
    return _spiffe_ids_of(x509.load_der_x509_certificate(der))


def _spiffe_ids_of(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("spiffe://")]


def _trust_domain(spiffe_id):
    return spiffe_id[len("spiffe://"):].split("/", 1)[0]


class _Conn(http.client.HTTPSConnection):
    """An HTTPS connection that authorizes the server by its X.509-SVID."""

    def __init__(self, host, port, timeout, context, authorize):
        super().__init__(host, port, timeout=timeout, context=context)
        self._authorize = authorize

    def connect(self):
        super().connect()
        ids = _spiffe_ids(self.sock.getpeercert(binary_form=True))
        if len(ids) != 1:
            self.close()
            raise _PeerRefused(f"the server's certificate carries {len(ids)} SPIFFE IDs, want 1")
        self._authorize(ids[0])


class _Failure(Exception):
    def __init__(self, message, retry=False, ambiguous=False):
        super().__init__(message)
        self.retry = retry
        self.ambiguous = ambiguous


def _read_jwt(jwt):
    if jwt and os.path.isfile(jwt):
        with open(jwt, encoding="ascii") as f:
            return f.read().strip()
    return jwt.strip()


def _jwt_subject(token):
    try:
        payload = _receipt.b64url_decode(token.split(".")[1], "JWT payload")
        sub = json.loads(payload)["sub"]
    except (IndexError, KeyError, ValueError, TypeError, _receipt.ReceiptMalformed) as e:
        raise ValueError(f"jwt: not a JWT-SVID with a sub claim: {e}") from e
    if not _receipt.valid_spiffe_id(sub):
        raise ValueError(f"jwt: sub {sub!r} is not a SPIFFE ID")
    return sub


class Client:
    """Talks to one ztlog service. Safe for use from several threads.

    server      https://host:port of the service
    svid        PREFIX of the agent's X.509-SVID files PREFIX.pem (chain) and
                PREFIX.key (mutual TLS)
    ca          the trust bundle, a PEM file of CA certificates
    jwt         a JWT-SVID (the token, or a file holding it), sent as a bearer
                token instead of (or with) the X.509-SVID
    timeout     seconds for one attempt (default 10)
    broker      the broker (SPIFFE ID) of requests that name none (default:
                the service's default_broker from /.well-known/ztlog)
    server_id   the service's SPIFFE ID (default: any member of the agent's
                trust domain)
    issuer      the log origin receipts must carry (default: read from the
                service's /.well-known/ztlog)
    retries     most attempts per call (default 3; 1 = no retry)
    """

    def __init__(self, server, svid=None, ca=None, jwt=None, timeout=10.0, *, broker=None, server_id=None,
                 issuer=None, retries=3, backoff=0.1, max_backoff=2.0, retry_ambiguous=False,
                 breaker_failures=5, breaker_cooldown=30.0, now=time.time):
        u = urlsplit(server)
        if u.scheme != "https" or not u.hostname:
            raise ValueError(f"server {server!r}: the service must be reached over https:// "
                             "(TLS authenticated by its X.509-SVID)")
        if not ca:
            raise ValueError("ca: the trust bundle (a PEM file) is required to authenticate the service")
        if not svid and not jwt:
            raise ValueError("an identity is required: svid=PREFIX (PREFIX.pem, PREFIX.key) or jwt=JWT-SVID")
        self.server = server.rstrip("/")
        self._host, self._port = u.hostname, u.port or 443
        self.timeout = timeout
        self.broker = broker or ""
        self.retries = max(1, int(retries))
        self.backoff, self.max_backoff = backoff, max_backoff
        self.retry_ambiguous = retry_ambiguous
        self.breaker_failures, self.breaker_cooldown = breaker_failures, breaker_cooldown
        self._now = now

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False  # the server is authorized by its SPIFFE ID instead
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"ca {ca!r}: cannot load the trust bundle: {e}") from e
        self._jwt = None
        if svid:
            try:
                ctx.load_cert_chain(svid + ".pem", svid + ".key")
            except (OSError, ssl.SSLError) as e:
                raise ValueError(f"svid {svid!r}: cannot load {svid}.pem and {svid}.key: {e}") from e
            with open(svid + ".pem", "rb") as f:
                leaf = x509.load_pem_x509_certificate(f.read())
            ids = _spiffe_ids_of(leaf)
            if len(ids) != 1:
                raise ValueError(f"svid {svid}.pem: want one SPIFFE ID in the certificate, found {len(ids)}")
            self.actor = ids[0]
        if jwt:
            self._jwt = _read_jwt(jwt)
            self.actor = _jwt_subject(self._jwt)
        self._ctx = ctx
        self.server_id = server_id
        self._trust_domain = _trust_domain(self.actor)

        self._lock = threading.Lock()
        self._issuer = issuer
        self._info = None  # /.well-known/ztlog, once read
        self._jwks = None
        self._failures = 0
        self._open_till = None
        self._trial = False

    # -- the API -----------------------------------------------------------

    def decide(self, action, resource, args=None, broker=None, correlation_id=None, user_token=None):
        """Ask for a decision and verify the answer.

        Returns a Decision (allowed True or False) only for a verified,
        committed answer; raises NoDecision (or Ambiguous, CircuitOpen)
        otherwise."""
        self._admit()
        try:
            d = self._decide(action, resource, args, broker, correlation_id, user_token)
        except BaseException:
            self._record(False)
            raise
        self._record(True)
        return d

    def guarded_call(self, action, resource, fn, args=None, broker=None, correlation_id=None, user_token=None):
        """Decide, and call fn(decision) only on a verified allow; return what fn returns.

        A committed deny raises Denied (reasons, index); no decision raises
        NoDecision (a Denied too). fn's own exceptions propagate."""
        d = self.decide(action, resource, args=args, broker=broker, correlation_id=correlation_id,
                        user_token=user_token)
        if not d.allowed or d.receipt is None or d.claims is None:
            raise Denied(decision=d)
        return fn(d)

    def issuer(self):
        """The log origin receipts must carry (``issuer=``, or read once from /.well-known/ztlog)."""
        with self._lock:
            if self._issuer:
                return self._issuer
        origin = self._well_known()["origin"]
        with self._lock:
            self._issuer = origin
        return origin

    def default_broker(self):
        """The broker the service decides for when a request names none
        (``default_broker`` of /.well-known/ztlog, read once); "" when the
        service has none (then requests must name one)."""
        return self._well_known().get("default_broker", "")

    def _well_known(self):
        """/.well-known/ztlog over the authenticated connection, read once
        (a failed read is not cached)."""
        with self._lock:
            if self._info is not None:
                return self._info
        wk = self._get_json("/.well-known/ztlog")
        if not isinstance(wk, dict):
            raise NoDecision("reading /.well-known/ztlog: not a JSON object")
        origin = wk.get("origin")
        if not isinstance(origin, str) or not origin:
            raise NoDecision("reading /.well-known/ztlog: no origin")
        broker = wk.get("default_broker") or ""
        if broker != "" and not _receipt.valid_spiffe_id(broker):
            raise NoDecision(f"reading /.well-known/ztlog: default_broker {broker!r} is not a SPIFFE ID")
        info = {"origin": origin, "default_broker": broker}
        with self._lock:
            if self._info is None:
                self._info = info
            return self._info

    def jwks(self, refresh=False):
        """The issuer's receipt JWKS (GET /v1/receipts/jwks.json), cached."""
        with self._lock:
            if self._jwks is not None and not refresh:
                return self._jwks
        keys = self._get_json("/v1/receipts/jwks.json")
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise NoDecision("the receipt JWKS is not a JWK set")
        with self._lock:
            self._jwks = keys
        return keys

    # -- circuit breaker ---------------------------------------------------

    def _admit(self):
        if self.breaker_failures is None or self.breaker_failures < 0:
            return
        with self._lock:
            if self._open_till is None:
                return
            if self._now() < self._open_till:
                raise CircuitOpen(f"circuit breaker open for {self._open_till - self._now():.0f} s more after "
                                  f"{self._failures} calls without a decision")
            if self._trial:
                raise CircuitOpen("circuit breaker open: a trial call is in flight")
            self._trial = True

    def _record(self, ok):
        if self.breaker_failures is None or self.breaker_failures < 0:
            return
        with self._lock:
            self._trial = False
            if ok:
                self._failures, self._open_till = 0, None
                return
            self._failures += 1
            if self._failures >= max(1, self.breaker_failures):
                self._open_till = self._now() + self.breaker_cooldown

    # -- one call ----------------------------------------------------------

    def _decide(self, action, resource, args, broker, correlation_id, user_token):
        cid = correlation_id or str(uuid.uuid4())
        broker = broker or self.broker
        if not broker:
            # The service decides for its default broker; name it, so that
            # the action digest checked here is the one the service commits.
            try:
                broker = self.default_broker()
            except NoDecision as e:
                e.correlation_id = cid
                raise
        try:
            body, digest = self._body(action, resource, args, broker, cid)
        except ValueError as e:
            raise NoDecision(str(e), correlation_id=cid) from e
        last = None
        for i in range(self.retries):
            if i > 0:
                if not (last.retry or (last.ambiguous and self.retry_ambiguous)):
                    break
                d = min(self.backoff * (2 ** (i - 1)), self.max_backoff)
                time.sleep(d / 2 + random.uniform(0, d / 2))
            try:
                status, raw = self._attempt(body, cid, user_token)
            except _Failure as f:
                last = f
                continue
            try:
                d = parse_answer(status, raw)
            except NoDecision as e:
                e.correlation_id = cid
                raise
            self._verify(d, digest, broker, cid)
            return d
        if last.ambiguous:
            raise Ambiguous(f"outcome unknown, the decision may be committed (correlation id {cid}): {last}",
                            correlation_id=cid)
        raise NoDecision(f"(correlation id {cid}): {last}", correlation_id=cid)

    def _body(self, action, resource, args, broker, cid):
        req = {"action": action, "resource": resource, "correlation_id": cid}
        args_digest = ""
        canonical = None
        if args is not None:
            canonical = jcs.canonicalize(args) if isinstance(args, dict) else None
            if canonical is None:
                raise ValueError("args must be a dict (a JSON object of argument values)")
            args_digest = jcs.digest(canonical)
            req["args_digest"] = args_digest
        if broker:
            req["broker"] = broker
        digest = jcs.action_digest(self.actor, action, resource, args_digest, broker)
        body = json.dumps(req, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if canonical is not None:
            # args go as their canonical form: the service's JCS digest of
            # them is then byte for byte the one computed here.
            body = body[:-1] + b',"args":' + canonical + b"}"
        return body, digest

    def _connect(self):
        def authorize(peer):
            if self.server_id:
                if peer != self.server_id:
                    raise _PeerRefused(f"the server is {peer}, want {self.server_id}")
            elif _trust_domain(peer) != self._trust_domain:
                raise _PeerRefused(f"the server {peer} is not in the trust domain {self._trust_domain}")
        return _Conn(self._host, self._port, self.timeout, self._ctx, authorize)

    def _headers(self):
        h = {"Accept": "application/json"}
        if self._jwt:
            h["Authorization"] = "Bearer " + self._jwt
        return h

    def _attempt(self, body, cid, user_token):
        conn = self._connect()
        try:
            try:
                conn.connect()
            except _PeerRefused as e:
                raise _Failure(str(e)) from e
            except (OSError, ssl.SSLError) as e:
                raise _Failure(f"connecting to {self.server}: {e}", retry=True) from e
            h = self._headers()
            h["Content-Type"] = "application/json"
            h[CORRELATION_HEADER] = cid
            if user_token:
                h[USER_TOKEN_HEADER] = user_token
            try:
                conn.request("POST", "/v1/actions", body=body, headers=h)
                resp = conn.getresponse()
                raw = resp.read(MAX_ANSWER)
            except (OSError, http.client.HTTPException) as e:
                raise _Failure(f"the request was sent, the answer lost: {e}", ambiguous=True) from e
        finally:
            conn.close()
        if resp.status == 503:
            code, msg = "", ""
            try:
                e = json.loads(raw)
                code, msg = e.get("code", ""), e.get("message", "")
            except (ValueError, AttributeError):
                pass
            if code in ("log_pushback", "shutting_down"):
                raise _Failure(f"503 {code}: {msg}", retry=True)
            raise _Failure(f"503 {code}: {msg}", ambiguous=True)
        if resp.status in (200, 403):
            try:
                json.loads(raw)
            except ValueError as e:
                # A body that is not a decision may hide a committed one.
                raise _Failure(f"the answer is not a decision: {e}", ambiguous=True) from e
        return resp.status, raw

    def _verify(self, d, digest, broker, cid):
        kw = dict(actor=self.actor, broker=broker, action_digest=digest, correlation_id=cid,
                  now=int(self._now()), leeway=LEEWAY)
        try:
            if not d.allowed:
                return check_answer(d, None, issuer=None, **kw)
            issuer = self.issuer()
            try:
                return check_answer(d, self.jwks(), issuer=issuer, **kw)
            except UnknownKey:
                # The key may have been rotated since the JWKS was read.
                return check_answer(d, self.jwks(refresh=True), issuer=issuer, **kw)
        except NoDecision as e:
            e.correlation_id = cid
            raise

    def _get_json(self, path):
        conn = self._connect()
        try:
            conn.connect()
            conn.request("GET", path, headers=self._headers())
            resp = conn.getresponse()
            raw = resp.read(MAX_ANSWER)
        except (OSError, ssl.SSLError, http.client.HTTPException, _PeerRefused) as e:
            raise NoDecision(f"GET {path}: {e}") from e
        finally:
            conn.close()
        if resp.status != 200:
            raise NoDecision(f"GET {path}: HTTP {resp.status}")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise NoDecision(f"GET {path}: not JSON: {e}") from e

