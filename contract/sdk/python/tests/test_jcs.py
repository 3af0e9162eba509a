"""JCS details beyond the shared vectors: refusals, and ECMAScript number forms."""

import pytest

pytest.importorskip("cryptography", reason="python3-cryptography is not installed (.ci/deps.d/python.sh)")
from ztlog import jcs


@pytest.mark.parametrize("x,want", [
    (0, "0"), (-0.0, "0"), (1.0, "1"), (-1, "-1"), (0.5, "0.5"), (100, "100"),
    (1e20, "100000000000000000000"), (1e21, "1e+21"), (1.5e21, "1.5e+21"), (123e-20, "1.23e-18"),
    (1e-6, "0.000001"), (1e-7, "1e-7"), (2 ** 53 + 1, "9007199254740992"), (2 ** 60, "1152921504606847000"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_es_number(x, want):
    assert jcs.es_number(x) == want


@pytest.mark.parametrize("value,why", [
    (float("nan"), "nan"), (float("inf"), "inf"), ({"k": float("-inf")}, "-inf"),
    ("\ud800", "lone surrogate"), ({1: "x"}, "int key"), ({"s": {1, 2}}, "a set"), (10 ** 400, "too large"),
])
def test_refused(value, why):
    with pytest.raises(ValueError):
        jcs.canonicalize(value)


def test_bool_is_not_a_number():
    assert jcs.canonicalize([True, False, None]) == b"[true,false,null]"


def test_args_must_be_an_object():
    with pytest.raises(ValueError):
        jcs.args_digest(["not", "an", "object"])


def test_action_digest_vector():
    # testdata/action-digest/vectors.json "no-args-no-broker"
    got = jcs.action_digest("spiffe://dev.ztlog.local/agent/demo", "aws.ec2.terminate_instances", "i-demo")
    assert got == "sha256:7234ccbffe17f12f2fd347e638cbf78d543b827c832f5a2c563ab70d0c419194"
