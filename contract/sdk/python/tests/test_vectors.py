"""The shared SDK vectors (testdata/sdk/README.md), run through this SDK.

One test per vector; each asserts the outcome, then each expected fact."""

import json
import os

import pytest

from conftest import REPO
pytest.importorskip("cryptography", reason="python3-cryptography is not installed (.ci/deps.d/python.sh)")
from ztlog import jcs
from ztlog.answer import verify_answer
from ztlog.errors import NoDecision
import ztlog

with open(os.path.join(REPO, "testdata", "sdk", "vectors.json"), encoding="utf-8") as f:
    VECTORS = json.load(f)


def test_vector_file_version():
    assert VECTORS["version"] == 1


@pytest.mark.parametrize("v", VECTORS["args_digests"], ids=lambda v: v["name"])
def test_args_digest(v):
    args = json.loads(v["args_json"])
    assert jcs.canonicalize(args).decode("utf-8") == v["canonical"]
    assert jcs.args_digest(args) == v["digest"]


def _digests(req):
    args_digest = jcs.args_digest(req["args"]) if req["args"] is not None else ""
    return args_digest, jcs.action_digest(req["actor"], req["action"], req["resource"], args_digest, req["broker"])


@pytest.mark.parametrize("v", VECTORS["answers"], ids=lambda v: v["name"])
def test_answer(v):
    req = v["request"]
    args_digest, action_digest = _digests(req)
    assert args_digest == v["args_digest"]
    assert action_digest == v["action_digest"]
    body = json.dumps(v["body"]).encode("utf-8")
    kw = dict(actor=req["actor"], issuer=v["issuer"], broker=req["broker"], action_digest=action_digest,
              correlation_id=req["correlation_id"], now=v["now"], leeway=VECTORS["leeway_seconds"])
    want = v["expect"]
    if want["outcome"] == "error":
        with pytest.raises(NoDecision) as e:
            verify_answer(v["status"], body, v["jwks"], **kw)
        assert e.value.kind == want["error"], str(e.value)
        return
    d = verify_answer(v["status"], body, v["jwks"], **kw)
    assert d.allowed == (want["outcome"] == "allow")
    assert d.index == want["index"]
    assert d.leaf_hash == want["leaf_hash"]
    assert d.policy_hash == want["policy_hash"]
    assert [(r.code, r.message) for r in d.reasons] == [(r["code"], r["message"]) for r in want["reasons"]]
    if d.allowed:
        assert d.claims["jti"] == want["receipt_id"]
        assert d.receipt == v["body"]["receipt"]
        assert d.assurance == want.get("assurance", "sequenced")
    else:
        assert d.receipt is None
        assert d.assurance is None


NAME_HELPERS = {
    "mcp_tool_action": lambda args: ztlog.mcp_tool_action(*args),
    "mcp_server_tool_action": lambda args: ztlog.mcp_server_tool_action(*args),
    "a2a_action": lambda args: ztlog.a2a_action(*args),
}


@pytest.mark.parametrize("v", VECTORS["names"], ids=lambda v: v["helper"] + ":" + ",".join(v["args"]))
def test_names(v):
    # The naming helpers agree with the Go and TypeScript SDKs'.
    assert NAME_HELPERS[v["helper"]](v["args"]) == v["action"]
