"""The Go action-digest vectors (testdata/action-digest/vectors.json)."""

import json
import os

import pytest

from conftest import REPO
pytest.importorskip("cryptography", reason="python3-cryptography is not installed (.ci/deps.d/python.sh)")
from ztlog import jcs

with open(os.path.join(REPO, "testdata", "action-digest", "vectors.json"), encoding="utf-8") as f:
    VECTORS = json.load(f)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_action_digest(v):
    m = {"v": 1, "actor": v["actor"], "action": v["action"], "resource": v["resource"],
         "args_digest": v["args_digest"], "broker": v["broker"]}
    if v.get("capabilities_digest"):
        m["capabilities_digest"] = v["capabilities_digest"]
    assert jcs.canonicalize(m).decode("utf-8") == v["canonical"]
    assert jcs.action_digest(v["actor"], v["action"], v["resource"], v["args_digest"], v["broker"],
                             v.get("capabilities_digest", "")) == v["digest"]
