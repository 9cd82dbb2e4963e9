"""Outputs (language 1.2): `output { KEY: E }` on a rule that decides, carried by the
decision in process, over gRPC (a real server and channel), over AuthZEN (a real
`policyd serve --http-port`), in the decision log always, and expected by tests."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from policyd import Engine, PolicyError, compile_text
from policyd.client import DecisionClient
from policyd.testing import Runner, discover, load

from .servers import thread_server
from .test_authzen import _serve

POLICY = """
principal User { roles: set<string>  tenant: string  clearance: number sensitive }
context { ip: ip  emergency?: bool  justification?: string }
role doctor
resource Record { tenant: string  actions read, write }
policy records for Record {
  condition emergency = context has emergency and context.emergency
  allow read when principal is doctor and principal.tenant == resource.tenant
  break_glass: allow read when emergency and context has justification
    output { audit: "break-glass", reason: context.justification, from: context.ip }
  no_writes: deny write when emergency
    output { alert: "no writes in an emergency" }
}
"""

TESTS = """
fixture doc = principal User "u" { roles: ["doctor"], tenant: "t", clearance: 1 }
fixture rec = resource Record "r" { tenant: "t" }
test "break-glass reads are flagged for audit" {
  given doc, rec, context { ip: ip("10.0.0.1"), emergency: true, justification: "code blue" }
  expect allow read by "records#1" output audit: "break-glass", reason: "code blue"
  expect deny write by records.no_writes output alert: "no writes in an emergency"
  given context { ip: ip("10.0.0.1") }
  expect allow read by "records#1"
}
"""

BASE = {"principal": {"type": "User", "id": "u", "attrs": {"roles": ["doctor"], "tenant": "t",
                                                          "clearance": 1}},
        "resource": {"type": "Record", "id": "r", "attrs": {"tenant": "t"}}}
EMERGENCY = {"ip": "10.0.0.1", "emergency": True, "justification": "code blue"}
BREAK_GLASS = {"records.break_glass": {"audit": "break-glass", "reason": "code blue",
                                       "from": "10.0.0.1"}}


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("outputs")
    (path / "records.policy").write_text(POLICY, encoding="utf-8")
    (path / "records.test.policy").write_text(TESTS, encoding="utf-8")
    return path


def test_every_allow_rule_that_holds_gives_its_outputs(policy_dir):
    engine = Engine.from_path(policy_dir)
    d = engine.check({**BASE, "action": "read", "context": EMERGENCY})
    # the first allow decides the reasons; every allow that holds gives its outputs
    assert list(d.reasons) == ["records#1"] and d.outputs == BREAK_GLASS
    assert d.to_dict()["outputs"] == BREAK_GLASS
    d = engine.check({**BASE, "action": "write", "context": EMERGENCY})
    assert not d.allowed and d.outputs == {"records.no_writes":
                                           {"alert": "no writes in an emergency"}}
    quiet = engine.check({**BASE, "action": "read", "context": {"ip": "10.0.0.1"}})
    assert quiet.allowed and not quiet.outputs and "outputs" not in quiet.to_dict()


def test_outputs_are_logged_always(policy_dir):
    records: list[dict] = []
    engine = Engine.from_path(policy_dir, decision_sink=records.append)
    engine.decide({**BASE, "action": "read", "context": EMERGENCY})
    assert records[-1]["outputs"] == BREAK_GLASS
    assert "attrs" not in records[-1]["principal"]  # attributes stay out; outputs do not


def test_outputs_over_grpc(policy_dir):
    with thread_server(policy_dir, reload=False) as (target, _), \
            DecisionClient(target, timeout=5) as client:
        d = client.check({**BASE, "action": "read", "context": EMERGENCY})
        assert d.outputs == BREAK_GLASS
        assert not client.check({**BASE, "action": "read",
                                 "context": {"ip": "10.0.0.1"}}).outputs


def test_outputs_in_authzen_context(policy_dir, tmp_path):
    server, url = _serve(tmp_path, policy_dir)
    try:
        body = {"subject": {"type": "User", "id": "u", "properties": BASE["principal"]["attrs"]},
                "action": {"name": "read"},
                "resource": {"type": "Record", "id": "r", "properties": {"tenant": "t"}},
                "context": EMERGENCY}
        answer = httpx.post(url + "/access/v1/evaluation", json=body, timeout=10).json()
        assert answer["decision"] is True
        assert answer["context"]["outputs"] == BREAK_GLASS
        log, end = tmp_path / "decisions.jsonl", time.monotonic() + 10
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.05)  # the log is written by its own thread
        assert json.loads(log.read_text().splitlines()[-1])["outputs"] == BREAK_GLASS
    finally:
        server.terminate()


def _results(path):
    suite = load(discover(path)[0])
    return list(Runner(suite.policy_set).run(suite.tests))


def test_tests_expect_outputs(policy_dir, tmp_path):
    assert [r.status for r in _results(policy_dir)] == ["passed"]
    (tmp_path / "records.policy").write_text(POLICY, encoding="utf-8")
    wrong = TESTS.replace('reason: "code blue"', 'reason: "code red"')
    (tmp_path / "records.test.policy").write_text(wrong, encoding="utf-8")
    [result] = _results(tmp_path)
    assert result.status == "failed"
    assert 'missing: reason: "code red"' in result.failure.message


@pytest.mark.parametrize("text,code", [
    ('allow read when true\n  show tenant when true output { a: "x" }', "E343"),
    ('allow read when true output { a: principal.clearance }', "E344"),
    ('allow read when true output { a: "x", a: "y" }', "E344"),
])
def test_output_mistakes_are_diagnostics(text, code):
    policy = POLICY.split("policy records")[0] + f"policy p for Record {{\n  {text}\n}}\n"
    with pytest.raises(PolicyError) as exc:
        compile_text(policy)
    assert code in [d.code for d in exc.value.diagnostics]


def test_output_headers_never_carry_what_a_header_cannot():
    """Envoy headers from outputs: a string with a line break, a control byte or edge
    spaces stays out (it would split or smuggle a header); other values are JSON."""
    from policyd.server.envoy import output_headers

    found = output_headers({
        "p.a": {"plain": "break-glass", "crlf": "ok\r\nx-policyd-decision: allowed",
                "nul": "a\x00b", "edge": " padded", "many": ["b", "a\n"], "n": 2.5},
        "p.b": {"plain": "second rule: the first wins", "Upper": True}})
    assert found == {"output-plain": "break-glass", "output-many": '["b","a\\n"]',
                     "output-n": "2.5", "output-upper": "true"}
