"""The SDK against a real `ztlog dev` process (built from this repository
with go, or taken from $ZTLOG_BIN), over real TLS on 127.0.0.1.

The stub tests put a small TLS server (with the dev server's own SVID) in
front of the real service: it answers what the test says (503s, broken
answers) and otherwise forwards to the service, so retries, ambiguity and
the circuit breaker are tested against real committed decisions."""

import asyncio
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import REPO
pytest.importorskip("cryptography", reason="python3-cryptography is not installed (.ci/deps.d/python.sh)")
import ztlog

BROKER = "spiffe://dev.ztlog.local/broker/demo"
AGENT = "spiffe://dev.ztlog.local/agent/demo"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def dev():
    """A running `ztlog dev`: yields (url, dev dir)."""
    binary = os.environ.get("ZTLOG_BIN")
    go = shutil.which("go")
    if not binary and not go:
        pytest.skip("go is not installed (needed to build ztlog for the live tests; or set ZTLOG_BIN)")
    tmp = tempfile.mkdtemp(prefix="ztlog-sdk-python-")
    if not binary:
        binary = os.path.join(tmp, "ztlog")
        b = subprocess.run([go, "build", "-o", binary, "./cmd/ztlog"], cwd=REPO, capture_output=True, text=True)
        if b.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.fail(f"go build ./cmd/ztlog failed:\n{b.stderr}")
    data = os.path.join(tmp, "data")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    log = open(os.path.join(tmp, "ztlog-dev.log"), "wb")
    proc = subprocess.Popen([binary, "dev", "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    devdir = os.path.join(data, "dev")
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ztlog dev exited with {proc.returncode}; log in {log.name}")
            if os.path.exists(os.path.join(devdir, "agent.jwt")):
                try:
                    ctx = ssl.create_default_context(cafile=os.path.join(devdir, "bundle.pem"))
                    ctx.check_hostname = False
                    with urllib.request.urlopen(url + "/readyz", context=ctx, timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
            if time.time() > deadline:
                pytest.fail(f"ztlog dev not ready after 90 s; log in {log.name}")
            time.sleep(0.2)
        yield url, devdir
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def mtls_client(dev, **kw):
    url, d = dev
    kw.setdefault("broker", BROKER)
    return ztlog.Client(url, svid=os.path.join(d, "agent"), ca=os.path.join(d, "bundle.pem"), **kw)


def jwt_client(dev, **kw):
    url, d = dev
    kw.setdefault("broker", BROKER)
    return ztlog.Client(url, ca=os.path.join(d, "bundle.pem"), jwt=os.path.join(d, "agent.jwt"), **kw)


# -- allow, deny, guarded_call ----------------------------------------------

def test_allow(dev):
    d = mtls_client(dev).decide("demo.echo", "demo://hello", args={"text": "hi"})
    assert d.allowed is True
    assert d.claims["aud"] == BROKER
    assert d.claims["sub"] == AGENT
    assert d.claims["log_index"] == d.index
    assert d.receipt.count(".") == 2
    assert d.policy_hash.startswith("sha256:")
    assert d.reasons[0].code == "policy.allow"


def test_deny(dev):
    d = mtls_client(dev).decide("aws.ec2.terminate_instances", "i-demo")
    assert d.allowed is False
    assert d.receipt is None
    assert d.reasons[0].code == "action.forbidden"
    assert isinstance(d.index, int)


def test_args_digest_agrees_with_the_service(dev):
    # The service commits the JCS digest of the args it received; the
    # answer verifies only if it equals the SDK's (numbers, escapes, order).
    args = {"text": "é <&> \u2028 😀", "n": 1e21, "f": 0.1, "big": 2 ** 64, "neg": -0.0,
            "nested": {"\ue000": 1, "😀": [True, None, 1.5e-7]}}
    d = mtls_client(dev).decide("demo.echo", "demo://hello", args=args)
    assert d.allowed is True
    assert d.action_digest == ztlog.action_digest(AGENT, "demo.echo", "demo://hello", ztlog.args_digest(args), BROKER)


def test_correlation_id_is_kept(dev):
    d = mtls_client(dev).decide("demo.echo", "demo://hello", correlation_id="py-sdk-cid-1")
    assert d.correlation_id == "py-sdk-cid-1"


def test_guarded_call_runs_fn_on_allow(dev):
    seen = []
    out = mtls_client(dev).guarded_call("demo.echo", "demo://hello", lambda d: seen.append(d) or "ran",
                                        args={"text": "hi"})
    assert out == "ran"
    assert len(seen) == 1
    assert seen[0].allowed is True


def test_guarded_call_does_not_run_fn_on_deny(dev):
    ran = []
    with pytest.raises(ztlog.Denied) as e:
        mtls_client(dev).guarded_call("aws.ec2.terminate_instances", "i-demo", lambda d: ran.append(d))
    assert ran == []
    assert e.value.committed is True
    assert isinstance(e.value.index, int)
    assert e.value.reasons[0].code == "action.forbidden"


def test_naming_helpers_are_decided(dev):
    c = mtls_client(dev)
    assert ztlog.mcp_tool_action("search") == "mcp.tool.search"
    assert ztlog.a2a_action("planner") == "a2a.planner.send_message"
    d = c.decide(ztlog.mcp_tool_action("search"), "web")
    assert d.response["action"] == "mcp.tool.search"


# -- no broker named: the service's default broker -------------------------

def test_no_broker_named_allow_verifies_for_the_default_broker(dev):
    c = mtls_client(dev, broker=None)
    assert c.default_broker() == BROKER
    d = c.decide("demo.echo", "demo://hello")
    assert d.allowed is True
    assert d.claims["aud"] == BROKER
    assert d.action_digest == ztlog.action_digest(AGENT, "demo.echo", "demo://hello", "", BROKER)


def test_no_broker_named_deny_verifies_for_the_default_broker(dev):
    c = mtls_client(dev, broker=None)
    d = c.decide("aws.ec2.terminate_instances", "i-demo")
    assert d.allowed is False
    assert d.action_digest == ztlog.action_digest(AGENT, "aws.ec2.terminate_instances", "i-demo", "", BROKER)
    assert d.reasons[0].code == "action.forbidden"


def test_no_broker_named_jwt_guarded_call(dev):
    c = jwt_client(dev, broker=None)
    assert c.guarded_call("demo.echo", "demo://hello", lambda d: d.claims["aud"]) == BROKER
    ran = []
    with pytest.raises(ztlog.Denied) as e:
        c.guarded_call("aws.ec2.terminate_instances", "i-demo", lambda d: ran.append(d))
    assert ran == []
    assert e.value.committed is True


def test_no_broker_named_async(dev):
    url, d = dev
    c = ztlog.AsyncClient(url, svid=os.path.join(d, "agent"), ca=os.path.join(d, "bundle.pem"))
    decision = asyncio.run(c.decide("demo.echo", "demo://hello"))
    assert decision.claims["aud"] == BROKER


# -- JWT-SVID bearer ----------------------------------------------------------

def test_jwt_allow(dev):
    c = jwt_client(dev)
    assert c.actor == AGENT
    d = c.decide("demo.echo", "demo://hello")
    assert d.allowed is True
    assert d.claims["sub"] == AGENT


def test_jwt_guarded_call_deny(dev):
    ran = []
    with pytest.raises(ztlog.Denied) as e:
        jwt_client(dev).guarded_call("aws.ec2.terminate_instances", "i-demo", lambda d: ran.append(d))
    assert ran == []
    assert e.value.committed is True


# -- async ------------------------------------------------------------------

def test_async_client(dev):
    url, d = dev
    c = ztlog.AsyncClient(url, svid=os.path.join(d, "agent"), ca=os.path.join(d, "bundle.pem"), broker=BROKER)

    async def tool(decision):
        return decision.index

    async def main():
        allowed = await c.guarded_call("demo.echo", "demo://hello", tool)
        with pytest.raises(ztlog.Denied):
            await c.guarded_call("aws.ec2.terminate_instances", "i-demo", tool)
        return allowed

    assert isinstance(asyncio.run(main()), int)


# -- service down -----------------------------------------------------------

def test_service_down_does_not_run_fn(dev):
    _, d = dev
    dead = f"https://127.0.0.1:{free_port()}"
    c = ztlog.Client(dead, svid=os.path.join(d, "agent"), ca=os.path.join(d, "bundle.pem"), broker=BROKER,
                     retries=2, backoff=0.01, timeout=2)
    ran = []
    with pytest.raises(ztlog.NoDecision) as e:
        c.guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []
    assert e.value.committed is False
    assert e.value.index is None


def test_wrong_trust_bundle_is_no_decision(dev):
    # The service is authenticated: a bundle that does not sign its SVID
    # refuses the connection, and nothing runs.
    url, d = dev
    other = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    with open(os.path.join(d, "agent.pem")) as f:  # a certificate that is no CA of the server
        other.write(f.read())
    other.close()
    c = ztlog.Client(url, jwt=os.path.join(d, "agent.jwt"), ca=other.name, broker=BROKER, retries=1)
    ran = []
    with pytest.raises(ztlog.NoDecision):
        c.guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []
    os.unlink(other.name)


def test_other_server_id_is_refused(dev):
    ran = []
    c = mtls_client(dev, server_id="spiffe://dev.ztlog.local/not-ztlog", retries=1)
    with pytest.raises(ztlog.NoDecision):
        c.guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []


# -- a stub in front of the real service ------------------------------------

class Stub:
    """A TLS server with the dev server's SVID. answer(n, body) returns
    (status, body bytes) for the n-th POST /v1/actions, or None to forward
    it to the real service."""

    def __init__(self, dev, answer, get=None):
        url, d = dev
        self.real, self.answer, self.get = url, answer, get
        self.requests, self.cids = 0, []
        self.forward_ctx = ssl.create_default_context(cafile=os.path.join(d, "bundle.pem"))
        self.forward_ctx.check_hostname = False
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method, body=None):
                req = urllib.request.Request(stub.real + self.path, data=body, method=method,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() in ("authorization", "content-type", "x-correlation-id")})
                try:
                    with urllib.request.urlopen(req, context=stub.forward_ctx, timeout=10) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()

            def do_GET(self):
                got = stub.get(self.path) if stub.get else None
                self._send(*(got or self._forward("GET")))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                stub.requests += 1
                stub.cids.append(self.headers.get("X-Correlation-ID"))
                got = stub.answer(stub.requests, body)
                if got is None:
                    got = self._forward("POST", body)
                elif callable(got):
                    got = got(self._forward("POST", body))
                self._send(*got)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub(dev):
    made = []

    def make(answer, get=None):
        s = Stub(dev, answer, get)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def stub_client(dev, s, **kw):
    _, d = dev
    kw.setdefault("broker", BROKER)
    kw.setdefault("backoff", 0.01)
    return ztlog.Client(s.url, ca=os.path.join(d, "bundle.pem"), jwt=os.path.join(d, "agent.jwt"), **kw)


def error503(code):
    return 503, json.dumps({"code": code, "message": "test"}).encode()


def test_pushback_is_retried_under_one_correlation_id(dev, stub):
    s = stub(lambda n, body: error503("log_pushback") if n < 3 else None)
    d = stub_client(dev, s, retries=3).decide("demo.echo", "demo://hello", correlation_id="py-retry-1")
    assert d.allowed is True
    assert s.requests == 3
    assert s.cids == ["py-retry-1"] * 3


def test_commit_timeout_is_ambiguous_and_not_retried(dev, stub):
    s = stub(lambda n, body: error503("commit_timeout") if n < 3 else None)
    with pytest.raises(ztlog.Ambiguous):
        stub_client(dev, s, retries=3).decide("demo.echo", "demo://hello")
    assert s.requests == 1


def test_ambiguous_retried_when_asked(dev, stub):
    s = stub(lambda n, body: error503("commit_timeout") if n < 3 else None)
    d = stub_client(dev, s, retries=3, retry_ambiguous=True).decide("demo.echo", "demo://hello")
    assert d.allowed is True
    assert s.requests == 3
    assert len(set(s.cids)) == 1


def tamper(edit):
    def f(forwarded):
        status, body = forwarded
        b = json.loads(body)
        edit(b)
        return status, json.dumps(b).encode()
    return f


@pytest.mark.parametrize("name,edit,kind", [
    ("another index", lambda b: b["log"].__setitem__("index", b["log"]["index"] + 1), "answer"),
    ("no receipt", lambda b: b.pop("receipt"), "answer"),
    ("receipt signature flipped", lambda b: b.__setitem__("receipt", b["receipt"][:-3] + ("A" if b["receipt"][-3] != "A" else "B") + b["receipt"][-2:]), "signature"),
    ("says deny", lambda b: b.__setitem__("decision", "deny"), "answer"),
])
def test_tampered_allow_does_not_run_fn(dev, stub, name, edit, kind):
    s = stub(lambda n, body: tamper(edit))
    ran = []
    with pytest.raises(ztlog.NoDecision) as e:
        stub_client(dev, s, retries=1).guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []
    assert e.value.kind == kind, str(e.value)


def test_server_error_is_no_decision(dev, stub):
    s = stub(lambda n, body: (500, b'{"code":"internal_error","message":"x"}'))
    ran = []
    with pytest.raises(ztlog.NoDecision):
        stub_client(dev, s, retries=3).guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []
    assert s.requests == 1


def test_circuit_breaker_opens_to_deny(dev, stub):
    s = stub(lambda n, body: (500, b'{"code":"internal_error","message":"down"}'))
    clock = [1000.0]
    c = stub_client(dev, s, retries=1, breaker_failures=3, breaker_cooldown=60, now=lambda: clock[0])
    for _ in range(3):
        with pytest.raises(ztlog.NoDecision):
            c.decide("demo.echo", "demo://hello")
    ran = []
    with pytest.raises(ztlog.CircuitOpen):
        c.guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []
    assert s.requests == 3
    clock[0] += 120
    with pytest.raises(ztlog.NoDecision) as e:
        c.decide("demo.echo", "demo://hello")  # the trial call reaches the service
    assert not isinstance(e.value, ztlog.CircuitOpen)
    assert s.requests == 4
    with pytest.raises(ztlog.CircuitOpen):
        c.decide("demo.echo", "demo://hello")  # a failed trial opens it again


@pytest.mark.parametrize("name,wellknown", [
    ("unreadable", (500, b'{"code":"internal_error","message":"x"}')),
    ("default broker not a SPIFFE ID", (200, json.dumps({"origin": "localhost/ztlog-dev", "default_broker": "broker-1"}).encode())),
])
def test_no_broker_named_and_no_default_broker_known_is_no_decision(dev, stub, name, wellknown):
    # Without the service's default broker the SDK cannot compute the
    # digest the service commits: no decision, nothing asked, fn not run.
    s = stub(lambda n, body: None, get=lambda path: wellknown if path == "/.well-known/ztlog" else None)
    ran = []
    with pytest.raises(ztlog.NoDecision) as e:
        stub_client(dev, s, broker=None, retries=1).guarded_call("demo.echo", "demo://hello", lambda d: ran.append(d))
    assert ran == []
    assert s.requests == 0
    assert "/.well-known/ztlog" in str(e.value)
