"""Decision logs, metrics and operator logs, on a real server and in process."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.request

from policyd import Engine, RequestError
from policyd.client import DecisionClient
from policyd.engine.records import MASK
from policyd.server.decision_log import DecisionLog

from .conftest import EXAMPLES, order, req, user
from .servers import ServeProcess, free_port

RECORD_KEYS = {"decision_id", "time", "policy_version", "principal", "action", "resource",
               "allowed", "reasons", "visible_fields", "write_fields", "retry_after",
               "duration_us", "request_id", "peer"}


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


def test_every_decision_is_one_line_correlated_and_counted(tmp_path):
    log_path, mport = tmp_path / "decisions.jsonl", free_port()
    server = ServeProcess(EXAMPLES / "orders", "--decision-log", str(log_path),
                          "--metrics-port", str(mport), "--log-format", "json",
                          tmp=tmp_path).wait_serving()
    ids = []
    try:
        with DecisionClient(server.target, timeout=5) as client:
            for i in range(20):  # one principal each: the example's quota is 20 at once
                ids.append(client.check_with_id(req(user(f"viewer{i}"), "read", order()),
                                                request_id=f"req-{i}")[1])
            batch = client.check_batch_with_ids(user("carol"), [
                {"resource": order("o1"), "actions": ["read", "delete", "refund"]},
                {"resource": order("o2", tenant="t2"), "actions": ["read", "list", "update"]}],
                {"ip": "10.1.2.3"}, request_id="batch-1")
            ids += [i for _, i in batch]
            with contextlib.suppress(RequestError):  # one invalid request: not a decision
                client.check({**req(user(), "read", order()), "principal": {}})
            plan, plan_id = client.plan_with_id(  # a query plan: one record, with its kind
                {"principal": user(), "action": "list", "resource": {"type": "Order"},
                 "context": {"ip": "10.1.2.3"}}, request_id="plan-1")
        metrics = _scrape(mport)
    finally:
        assert server.terminate() == 0
    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    plan_record = records.pop()
    assert plan_record["decision_id"] == plan_id and plan_record["kind"] == plan.kind
    assert set(plan_record) == RECORD_KEYS - {"allowed", "visible_fields", "write_fields",
                                              "retry_after"} | {"kind"}
    assert plan_record["request_id"] == "plan-1" and plan_record["resource"]["id"] is None
    assert metrics['policyd_plans_total{action="list",kind="conditional",resource="Order"}'] \
        == 1
    assert metrics["policyd_plan_seconds_count"] == 1
    assert len(records) == 26 and [r["decision_id"] for r in records] == ids
    assert all(set(r) == RECORD_KEYS for r in records)
    assert all(set(r["principal"]) == {"type", "id"} and "attrs" not in r["resource"]
               for r in records)
    assert "4242" not in log_path.read_text()  # no attribute values by default
    assert records[3]["request_id"] == "req-3" and records[-1]["request_id"] == "batch-1"
    assert records[0]["peer"].startswith("ipv4:127.0.0.1")
    assert [r["reasons"] for r in records[21:23]] == [["orders.no_delete"], ["default_deny"]]
    assert _total(metrics, "policyd_decisions_total{") == 26
    assert metrics['policyd_decisions_total{action="read",allowed="true",resource="Order"}'] == 21
    assert metrics['policyd_request_errors_total{code="invalid_argument"}'] == 1
    assert _total(metrics, "policyd_policy_info{") == 1
    assert metrics["policyd_decision_seconds_count"] == 26
    assert "process_cpu_seconds_total" in metrics
    operator = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(r["message"].startswith("serving") for r in operator)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in operator)


def test_labels_never_carry_client_made_names(tmp_path):
    mport = free_port()
    server = ServeProcess(EXAMPLES / "orders", "--metrics-port", str(mport),
                          tmp=tmp_path).wait_serving()
    try:
        with DecisionClient(server.target, timeout=5) as client:
            for i in range(5):
                client.check(req(user(), f"shadow_{i}", order()))
                client.check(req(user(), "read", {"type": f"Ghost{i}", "id": "g"}))
        metrics = _scrape(mport)
    finally:
        server.terminate()
    names = " ".join(metrics)
    assert "shadow_" not in names and "Ghost" not in names
    assert metrics['policyd_decisions_total{action="_unknown",allowed="false",'
                   'resource="Order"}'] == 5


def test_sigterm_under_load_loses_no_record(tmp_path):
    log_path = tmp_path / "d.jsonl"
    server = ServeProcess(EXAMPLES / "orders", "--decision-log", str(log_path),
                          tmp=tmp_path).wait_serving()
    ok_ids: list[str] = []
    stop = threading.Event()

    def hammer():
        with DecisionClient(server.target, timeout=5) as client:
            while not stop.is_set():
                try:
                    ok_ids.append(client.check_with_id(req(user(), "read", order()))[1])
                except Exception:
                    return  # the server has stopped accepting calls

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.8)
    code = server.terminate()
    stop.set()
    for t in threads:
        t.join()
    logged = {json.loads(line)["decision_id"] for line in log_path.read_text().splitlines()}
    assert code == 0 and len(ok_ids) > 50
    assert set(ok_ids) <= logged


def test_log_attributes_masks_sensitive_values():
    records: list[dict] = []
    engine = Engine.from_path(EXAMPLES / "admin", decision_sink=records.append,
                              log_attributes=True)
    service = {"type": "Service", "id": "billing-sync",
               "attrs": {"scopes": ["tenants:read"], "team": "billing", "key_id": "k-77-secret"}}
    tenant = {"type": "Tenant", "id": "acme", "attrs": {"plan": "p", "suspended": False,
                                                         "owner_team": "t",
                                                         "billing_email": "ap@acme.test"}}
    decision, decision_id = engine.decide({"principal": service, "action": "read",
                                           "resource": tenant, "context": {"ip": "10.0.0.1"}},
                                          request_id="r1")
    assert decision.allowed and len(records) == 1
    record = records[0]
    assert record["decision_id"] == decision_id and record["request_id"] == "r1"
    assert record["principal"]["attrs"] == {"scopes": ["tenants:read"], "team": "billing",
                                            "key_id": MASK}
    assert record["resource"]["attrs"]["plan"] == "p" and record["context"] == {"ip": "10.0.0.1"}
    assert "k-77-secret" not in json.dumps(record)


def test_embedded_engines_get_the_same_records_for_batches():
    records: list[dict] = []
    engine = Engine.from_path(EXAMPLES / "orders", decision_sink=records.append)
    engine.check(req(user(), "read", order()))
    results = engine.decide_batch(user(), [{"resource": order(), "actions": ["read", "list"]}],
                                  {"ip": "10.1.2.3"}, request_id="b")
    assert len(records) == 3 and [r["decision_id"] for r in records[1:]] == \
        [i for _, i in results]
    assert {r["action"] for r in records} == {"read", "list"}


class _Stuck:
    def __init__(self):
        self.release = threading.Event()
        self.lines = []

    def write(self, text):
        self.release.wait(10)
        self.lines.append(text)

    def flush(self):
        pass

    def close(self):
        pass


def test_a_stalled_writer_drops_counts_and_logs_once(tmp_path, caplog):
    drops = []
    dlog = DecisionLog(str(tmp_path / "x.jsonl"), max_queue=4, on_drop=lambda: drops.append(1),
                       wait=0.01)
    stuck = _Stuck()
    dlog._file.close()
    dlog._file = stuck
    dlog.emit({"n": -1})
    time.sleep(0.2)  # the writer has taken it and is stuck writing
    with caplog.at_level(logging.ERROR, "policyd.audit"):
        for i in range(49):
            dlog.emit({"n": i})
    stuck.release.set()
    dlog.close()
    written = "".join(stuck.lines).splitlines()
    assert dlog.dropped == len(drops) == 45
    assert len(written) + dlog.dropped == 50
    assert caplog.text.count("decision log writer stalled") == 1


class _Slow(_Stuck):
    def write(self, text):
        time.sleep(0.02)
        self.lines.append(text)


def test_a_slow_writer_slows_callers_and_drops_nothing(tmp_path):
    """Back-pressure: while the queue is full, emit waits for the writer; nothing is lost."""
    dlog = DecisionLog(str(tmp_path / "x.jsonl"), max_queue=4, wait=5.0)
    slow = _Slow()
    dlog._file.close()
    dlog._file = slow

    def flood(k):
        for i in range(25):
            dlog.emit({"n": k * 100 + i})

    threads = [threading.Thread(target=flood, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dlog.close()
    written = sorted(json.loads(line)["n"] for line in "".join(slow.lines).splitlines())
    assert dlog.dropped == 0
    assert written == sorted(k * 100 + i for k in range(4) for i in range(25))


def test_external_rotation_reopens_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(DecisionLog, "REOPEN_CHECK", 0.0)
    path = tmp_path / "d.jsonl"
    dlog = DecisionLog(str(path))
    dlog.emit({"n": 1})
    time.sleep(0.2)
    path.rename(tmp_path / "d.jsonl.1")  # logrotate: move, then the writer must create anew
    dlog.emit({"n": 2})
    dlog.close()
    assert json.loads((tmp_path / "d.jsonl.1").read_text()) == {"n": 1}
    assert json.loads(path.read_text()) == {"n": 2}


def test_record_timestamps_are_rfc3339_utc_across_seconds(monkeypatch):
    from policyd.engine import records

    for now, want in ((100.5, "1970-01-01T00:01:40.500000Z"),
                      (100.75, "1970-01-01T00:01:40.750000Z"),
                      (101.000001, "1970-01-01T00:01:41.000001Z"),
                      (86399.999999, "1970-01-01T23:59:59.999999Z")):
        monkeypatch.setattr(records.time, "time", lambda now=now: now)
        assert records.timestamp()[:-4] == want[:-4]  # float seconds: to the millisecond


def test_json_lines_are_the_records_build_makes(tmp_path):
    """RecordBuilder.line (what DecisionLog is given) against build + the log's encoder,
    for allowed, denied, limited, warned, dry-run and writing decisions."""
    from policyd.engine.records import RecordBuilder

    engine = Engine.from_path(EXAMPLES / "orders", clock=lambda: 1795341600.0)
    builder = RecordBuilder(engine.policy_set.schema)
    log = DecisionLog(str(tmp_path / "d.jsonl"))
    try:
        cases = [req(user(), "read", order()), req(user(tenant="t2"), "read", order()),
                 req(user(roles=["viewer", "ghost"]), "read", order()),
                 req(user(), "update", order(), write_fields=["status"]),
                 req(user(), "read", order(), dry_run=True),
                 req(user(uid='a"\\b\u00e9\u2028'), "list", order(oid="o\n1")),
                 req(user(roles=["support"], mfa=True), "refund", order())]
        cases += [cases[-1]] * 8  # past the refund limit: rate_limited with retry_after
        for request in cases:
            decision = engine.check(request)
            for request_id, peer in (("", ""), ('r"1\u00e9', "ipv4:127.0.0.1:1")):
                line = builder.line(request, decision, "id-1", 12.34, request_id, peer)
                want = json.loads(log.line(builder.build(request, decision, "id-1", 12.34,
                                                         request_id, peer)))
                got = json.loads(line)
                assert line.isascii() and "\n" not in line
                assert got.pop("time")[:17] == want.pop("time")[:17]
                assert list(got) == list(want) and got == want
        assert any(json.loads(builder.line(r, engine.check(r), "x", 1.0))["reasons"][:1] ==
                   ["rate_limited"] for r in cases[-2:])
    finally:
        log.close()
    assert builder.line(req(user(), "read", order()), engine.plan(
        {"principal": user(), "action": "list", "resource": {"type": "Order"},
         "context": {"ip": "10.1.2.3"}}), "x", 1.0) is None  # plans: the dict's path
