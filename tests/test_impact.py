"""The impact of a change: `policyd diff` over request files, decision logs and test
fixtures, and `policyd serve --shadow` against a real server."""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest

from policyd import Engine
from policyd.cli import main
from policyd.client import DecisionClient

from .conftest import EXAMPLES, order, req, user
from .servers import ServeProcess, free_port

ORDERS = EXAMPLES / "orders"


@pytest.fixture()
def loosened(tmp_path):
    """The orders set with its tenant fence narrowed to deletes: a risky change."""
    new = tmp_path / "new"
    shutil.copytree(ORDERS, new)
    policy = new / "orders.policy"
    policy.write_text(policy.read_text().replace(
        "tenant_isolation: deny * when", "tenant_isolation: deny delete when"))
    return new


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_unchanged_set_changes_nothing(capsys):
    code, out, _ = run(capsys, "diff", ORDERS, ORDERS, "--requests", ORDERS / "requests",
                       ORDERS)
    assert code == 0 and " 0 changed" in out.splitlines()[0]


def test_changed_decisions_are_grouped_by_the_rules_responsible(capsys, loosened, tmp_path):
    other = [req(user(tenant="t2"), "read", order()), req(user(tenant="t2"), "list", order()),
             req(user(tenant="t2"), "delete", order())]
    listed = tmp_path / "requests.json"
    listed.write_text(json.dumps(other))
    code, out, _ = run(capsys, "diff", ORDERS, loosened, "--requests", listed, "--format",
                       "json")
    report = json.loads(out)
    assert code == 1 and report["decided"] == 3 and report["changed"] == 2
    (group,) = report["groups"]
    assert group["old"] == "denied by orders.tenant_isolation"
    assert group["new"].startswith("allowed by orders#2") and group["count"] == 2
    assert group["examples"][0]["source"] == f"{listed}[0]"


def test_test_fixtures_are_a_source_of_requests(capsys, loosened):
    code, out, _ = run(capsys, "diff", ORDERS, loosened, "--requests", ORDERS, "--format",
                       "json")
    report = json.loads(out)
    # every principal x resource x context fixture pair, for each of Order's 6 actions
    assert report["decided"] == 4 * 1 * 2 * 6  # alice, bob_admin, carol, dave; order1
    assert code == 0 and report["changed"] == 0  # every fixture shares tenant t1


def test_a_decision_log_is_turned_back_into_requests(capsys, loosened, tmp_path):
    records = []
    engine = Engine.from_path(ORDERS, decision_sink=records.append, log_attributes=True)
    engine.check(req(user(tenant="t2"), "read", order()))
    engine.check(req(user(), "read", order()))
    engine.plan({"principal": user(), "action": "list", "resource": {"type": "Order"},
                 "context": {"ip": "10.1.2.3"}})
    without = Engine.from_path(ORDERS, decision_sink=records.append)
    without.check(req(user(), "read", order()))
    log = tmp_path / "decisions.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    code, out, _ = run(capsys, "diff", ORDERS, loosened, "--requests", log)
    assert code == 1 and out.startswith("2 requests decided with both sets, 1 changed")
    assert "skipped 1: query plan records" in out
    assert "skipped 1: records without attributes" in out


def test_shadow_logs_and_counts_disagreements_and_answers_with_the_serving_set(tmp_path,
                                                                                loosened):
    mport = free_port()
    server = ServeProcess(ORDERS, "--shadow", str(loosened), "--metrics-port", str(mport),
                          "--log-format", "json", tmp=tmp_path).wait_serving()
    try:
        with DecisionClient(server.target, timeout=5) as client:
            fenced = client.check(req(user("a", tenant="t2"), "read", order()))
            same = client.check(req(user("b"), "read", order()))
            batch = client.check_batch(user("c", tenant="t2"), [
                {"resource": order("o2"), "actions": ["read", "delete"]}], {"ip": "10.1.2.3"})
        text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) \
            .read().decode()
    finally:
        assert server.terminate() == 0
    assert not fenced.allowed and fenced.reasons == ["orders.tenant_isolation"]  # PATH's
    assert same.allowed and [d.allowed for d in batch] == [False, False]
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    told = [json.loads(r["message"].split(": ", 1)[1]) for r in lines
            if r["message"].startswith("shadow disagrees")]
    assert len(told) == 2 and {t["action"] for t in told} == {"read"}
    assert told[0]["serving"]["reasons"] == ["orders.tenant_isolation"]
    assert told[0]["shadow"]["allowed"] is True
    assert 'policyd_shadow_disagreements_total{action="read",resource="Order"} 2.0' in text


def test_shadow_covers_the_authzen_front_door(tmp_path, loosened):
    import time

    import httpx

    http_port = free_port()
    server = ServeProcess(ORDERS, "--shadow", str(loosened), "--http-port", str(http_port),
                          "--log-format", "json", tmp=tmp_path).wait_serving()
    body = {"subject": {"type": "User", "id": "a", "properties": {
                "roles": ["viewer"], "tenant": "t2", "mfa": False}},
            "action": {"name": "read"},
            "resource": {"type": "Order", "id": "o1", "properties": order()["attrs"]},
            "context": {"ip": "10.1.2.3"}}
    try:
        end = time.monotonic() + 10
        while True:
            try:
                resp = httpx.post(f"http://127.0.0.1:{http_port}/access/v1/evaluation",
                                  json=body, timeout=5)
                break
            except httpx.ConnectError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        assert resp.json() == {"decision": False}  # the serving set's answer
    finally:
        assert server.terminate() == 0
    assert any("shadow disagrees" in line for line in server.log().splitlines())
