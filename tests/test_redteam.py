"""Regression tests for the red-team findings of issue #10, one section per finding.

Each test failed on the code before the fix; the note of issue #10 lists them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from policyd import Engine, PolicyError, RequestError, compile_path, compile_text
from policyd.client import DecisionClient
from policyd.engine.ratelimit import MemoryStore
from policyd.server.decision_log import DecisionLog
from policyd.server.reload import PolicyWatcher

from .conftest import EXAMPLES, OFFICE, ROOT, order, req, user
from .servers import ServeProcess, free_port, thread_server

SCHEMA = """
principal User { roles: set<string> tenant: string }
role viewer
resource Doc owned by owner {
  owner: string
  tenant: string
  actions read, update
}
"""
ALLOW = "policy docs for Doc { allow read, update when principal is viewer  show * }\n"
FENCE = "policy fence for Doc { walled: deny * when principal.tenant != resource.tenant }\n"


def doc_request(ptenant="t1", rtenant="t2", pid="alice"):
    return {"principal": {"type": "User", "id": pid,
                          "attrs": {"roles": ["viewer"], "tenant": ptenant}},
            "action": "read",
            "resource": {"type": "Doc", "id": "d1", "attrs": {"owner": "bob", "tenant": rtenant}}}


def _wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# ---- 1. one CheckBatch can stall the server and erase others' audit trail ----------


def test_a_batch_over_the_bound_is_refused_before_any_work():
    with thread_server(EXAMPLES / "orders") as (target, _), \
            DecisionClient(target, timeout=10) as client:
        items = [{"resource": order(), "actions": ["read"] * 1001}]
        with pytest.raises(RequestError, match=r"1,001 decisions.*at most 1,000.*"
                                               r"--max-batch-decisions"):
            client.check_batch(user(), items, OFFICE)
        assert len(client.check_batch(user(), [{"resource": order(), "actions": ["read"] * 1000}],
                                      OFFICE)) == 1000


def test_a_batch_flood_never_drops_other_callers_records(tmp_path):
    log_path = tmp_path / "decisions.jsonl"
    server = ServeProcess(EXAMPLES / "orders", "--decision-log", str(log_path),
                          "--decision-log-queue", "50", "--no-reload", tmp=tmp_path)
    server.wait_serving()
    stop, ids = threading.Event(), []

    def flood():
        with DecisionClient(server.target, timeout=30) as client:
            while not stop.is_set():
                client.check_batch(user(), [{"resource": order(), "actions": ["read"] * 1000}],
                                   OFFICE)

    flooders = [threading.Thread(target=flood) for _ in range(2)]
    for t in flooders:
        t.start()
    try:
        with DecisionClient(server.target, timeout=30) as client:
            for i in range(150):
                ids.append(client.check_with_id(req(user(), "read", order(f"o{i}")))[1])
    finally:
        stop.set()
        for t in flooders:
            t.join()
        assert server.terminate() == 0
    logged = {json.loads(line)["decision_id"] for line in log_path.read_text().splitlines()}
    assert not set(ids) - logged
    assert "dropped" not in server.log()


# ---- 2. hot reload installed a half-written file ------------------------------------


def test_reload_never_installs_a_file_caught_mid_rewrite(tmp_path):
    (tmp_path / "schema.policy").write_text(SCHEMA + ALLOW)
    fence = tmp_path / "fence.policy"
    fence.write_text(FENCE)
    engine = Engine.from_path(tmp_path)
    watcher = PolicyWatcher(tmp_path, engine, interval=0.005)
    stop, allowed, decided = threading.Event(), [], [0]

    def rewrite():  # in place, as `cat > fence.policy` or a careless editor does
        while not stop.is_set():
            with open(fence, "w") as f:
                f.flush()
                time.sleep(0.002)
                f.write(FENCE)
            time.sleep(0.001)

    def decide():
        while not stop.is_set():
            d = engine.check(doc_request())
            decided[0] += 1
            if d.allowed:
                allowed.append(d.policy_version)

    threads = [threading.Thread(target=rewrite), threading.Thread(target=decide)]
    watcher.start()
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    watcher.stop()
    assert decided[0] > 100
    assert allowed == []


def test_a_snapshot_notices_content_changed_under_the_same_size_and_mtime(tmp_path):
    from policyd.language.sources import read_snapshot, unchanged

    f = tmp_path / "a.policy"
    f.write_text("role aaaa\n")
    snap = read_snapshot(tmp_path)
    st = f.stat()
    f.write_text("role bbbb\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert unchanged(snap) is False


def test_reload_warns_when_a_file_that_held_rules_is_now_empty(tmp_path, caplog):
    (tmp_path / "schema.policy").write_text(SCHEMA + ALLOW)
    (tmp_path / "fence.policy").write_text(FENCE)
    engine = Engine.from_path(tmp_path)
    (tmp_path / "fence.policy").write_text("")
    with caplog.at_level("WARNING", "policyd.reload"):
        assert PolicyWatcher(tmp_path, engine).reload()
    assert "fence.policy is now empty (it held declarations before)" in caplog.text


def test_an_emptied_file_is_installed_only_once_it_has_held_still(tmp_path, monkeypatch):
    from policyd.server import reload as reload_module

    monkeypatch.setattr(reload_module, "EMPTIED_HOLD", 0.4)
    (tmp_path / "schema.policy").write_text(SCHEMA + ALLOW)
    fence = tmp_path / "fence.policy"
    fence.write_text(FENCE)
    engine = Engine.from_path(tmp_path)
    fenced = engine.version
    watcher = PolicyWatcher(tmp_path, engine, interval=0.02)
    watcher.start()
    try:
        fence.write_text("")
        time.sleep(0.2)  # stable for several intervals, but not for EMPTIED_HOLD
        assert engine.version == fenced and not engine.check(doc_request()).allowed
        end = time.monotonic() + 10
        while engine.version == fenced:
            assert time.monotonic() < end, "the emptied file was never installed"
            time.sleep(0.02)
        assert engine.check(doc_request()).allowed  # emptying a file is a real edit
    finally:
        watcher.stop()


# ---- 3. symlinked directories were skipped silently ---------------------------------


def test_a_symlinked_directory_is_part_of_the_set(tmp_path, capsys):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "fence.policy").write_text(FENCE)
    root = tmp_path / "set"
    root.mkdir()
    (root / "schema.policy").write_text(SCHEMA + ALLOW)
    (root / "fences").symlink_to("../shared")
    (root / "loop").symlink_to(".")  # a loop must end, each real directory read once
    decision = Engine.from_path(root).check(doc_request())
    assert not decision.allowed and decision.reasons == ["fence.walled"]
    from policyd.cli import main

    assert main(["check", str(root)]) == 0
    assert "ok: 2 files loaded (2 policy, 0 test)" in capsys.readouterr().out


# ---- 4. Kubernetes ConfigMap volumes never loaded ------------------------------------


def _configmap(root: Path, stamp: str, files: dict[str, str]) -> None:
    """The kubelet's layout: files in a hidden timestamp directory, `..data` pointing at
    it, and a top-level link per file into `..data`; a new version is swapped in by
    renaming a new `..data` link over the old one."""
    version = root / f"..{stamp}"
    version.mkdir()
    for name, text in files.items():
        (version / name).write_text(text)
        if not (root / name).is_symlink():
            (root / name).symlink_to(f"..data/{name}")
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(version.name)
    os.replace(tmp_link, root / "..data")


def test_a_configmap_volume_loads_and_reloads_when_data_is_swapped(tmp_path):
    cm = tmp_path / "cm"
    cm.mkdir()
    _configmap(cm, "2026_12_01_10_00_00.1", {"schema.policy": SCHEMA + ALLOW,
                                              "fence.policy": "# no fence yet\n"})
    engine = Engine.from_path(cm)
    assert engine.check(doc_request()).allowed
    watcher = PolicyWatcher(cm, engine, interval=0.05)
    watcher.start()
    try:
        _configmap(cm, "2026_12_01_10_05_00.2", {"schema.policy": SCHEMA + ALLOW,
                                                  "fence.policy": FENCE})
        assert _wait_for(lambda: not engine.check(doc_request()).allowed)
    finally:
        watcher.stop()
    assert engine.check(doc_request()).reasons == ["fence.walled"]
    assert sorted(Path(p).name for p in engine.policy_set.sources) == ["fence.policy",
                                                                      "schema.policy"]


# ---- 5. the memory rate store grew without a byte bound -------------------------------


def test_ids_and_strings_over_the_limit_are_request_errors():
    engine = Engine.from_path(EXAMPLES / "orders")
    with pytest.raises(RequestError, match=r"principal\.id is 4097 bytes long, over the limit "
                                           r"of 4096"):
        engine.check(req(user(uid="u" * 4097), "read", order()))
    with pytest.raises(RequestError, match=r"resource\.attrs\.status is 5000 bytes long"):
        engine.check(req(user(), "read", order(status="é" * 2500)))
    assert engine.check(req(user(uid="é" * 2048), "read", order())).reasons  # 4096 bytes


def test_bucket_keys_have_a_fixed_size_whatever_the_ids():
    store = MemoryStore()
    ps = compile_path(EXAMPLES / "orders", max_string_bytes=1 << 20)
    engine = Engine(ps, rate_store=store)
    for i in range(20):
        engine.check(req(user(uid=f"{i}" + "x" * 100_000), "read", order()))
    parts = [part for key in store._tat for part in key]
    assert len(store) == 20
    assert all(len(part) <= 64 for part in parts)


def test_full_buckets_expire_lazily_without_reaching_the_bound():
    now = [1000.0]
    store = MemoryStore(max_keys=1_000_000)
    engine = Engine(compile_path(EXAMPLES / "orders"), rate_store=store, clock=lambda: now[0])
    for i in range(200):
        engine.check(req(user(uid=f"a{i}"), "read", order()))
    now[0] += 3600  # every bucket has refilled: they hold nothing worth keeping
    for i in range(200):
        engine.check(req(user(uid=f"b{i}"), "read", order()))
    assert len(store) <= 210


# ---- 6. arithmetic could make a deny rule silently false ------------------------------


def test_a_non_finite_computation_denies_with_error():
    ps = compile_text("""
        principal User { roles: set<string> }
        resource Line { quantity: number  unit_price: number  unit_discount: number
                        actions buy }
        const max_total = 10000
        policy lines for Line {
          too_big: deny buy when resource.quantity * resource.unit_price
                                 - resource.quantity * resource.unit_discount > max_total
          allow buy when true
        }""")
    engine = Engine(ps)
    big = {"principal": {"type": "User", "id": "u", "attrs": {"roles": []}}, "action": "buy",
           "resource": {"type": "Line", "id": "l1",
                        "attrs": {"quantity": 1e300, "unit_price": 1e300, "unit_discount": 1e300}}}
    assert engine.check(big).reasons == ["error"]
    assert engine.check(big, explain=True).reasons == ["error"]
    big["resource"]["attrs"].update(quantity=2, unit_price=3, unit_discount=1)
    assert engine.check(big).allowed


# ---- 7. checker and compiler crashes on valid-looking policies --------------------------

BASE = "principal User { roles: set<string> }\nresource R { n: number  actions read }\n"


def _codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        compile_text(text, "t.policy")
    return [d.code for d in info.value.diagnostics if d.is_error]


def test_number_literals_out_of_range_are_diagnostics():
    assert _codes(BASE + "policy p for R { allow read when resource.n < 1" + "0" * 400
                  + ".5 }") == ["E005"]
    assert _codes(BASE + "const big = [1" + "0" * 400 + ".0]\n"
                  + "policy p for R { allow read when resource.n in big }") == ["E005"]
    assert _codes(BASE + "policy p for R { allow read when resource.n < 9" + "9" * 5000
                  + " }") == ["E005"]
    assert _codes(BASE + "policy p for R { allow read when true\n limit read: 1" + "0" * 400
                  + " per 1s by principal.id }") == ["E005"]
    assert _codes(BASE + "policy p for R { allow read when true\n"
                  " limit read: 5000000000 per 1s by principal.id }") == ["E119"]


def test_long_role_chains_check_in_linear_memory():
    chain = "".join(f"role r{i} extends r{i + 1}\n" for i in range(3000)) + "role r3000\n"
    text = BASE + chain + "policy p for R { allow read when principal is r3000 }"
    tracemalloc.start()
    try:
        ps = compile_text(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 1024 * 1024  # the quadratic closure held 4.5 million role names
    engine = Engine(ps)
    r = {"principal": {"type": "User", "id": "u", "attrs": {"roles": ["r0"]}},
         "action": "read", "resource": {"type": "R", "id": "x", "attrs": {"n": 1}}}
    assert engine.check(r).allowed


def test_roles_declared_in_reverse_order_do_not_recurse():
    chain = "".join(f"role r{i} extends r{i - 1}\n" for i in range(1200, 0, -1)) + "role r0\n"
    ps = compile_text(BASE + chain + "policy p for R { allow read when principal is r0 }")
    assert len(ps.schema.roles) == 1201
    cycle = BASE + "".join(f"role r{i} extends r{(i + 1) % 1500}\n" for i in range(1500))
    assert "E112" in _codes(cycle + "policy p for R { allow read when principal is r0 }")


def test_thousands_of_allow_rules_on_one_action_compile_and_decide():
    rules = "\n".join(f"allow read when resource.n == {i}" for i in range(3000))
    engine = Engine(compile_text(BASE + "policy p for R {\n" + rules + "\n}"))
    r = {"principal": {"type": "User", "id": "u", "attrs": {"roles": []}},
         "action": "read", "resource": {"type": "R", "id": "x", "attrs": {"n": 2999}}}
    assert engine.check(r).reasons == ["p#3000"]
    r["resource"]["attrs"]["n"] = -1
    assert engine.check(r).reasons == ["default_deny"]


def test_eval_of_deeply_nested_json_is_a_request_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    proc = subprocess.run([sys.executable, "-m", "policyd", "eval", str(EXAMPLES / "orders"),
                           str(deep)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "nested too deeply" in proc.stderr and "Traceback" not in proc.stderr


# ---- 8. a sensitive value could be logged in clear during a reload -----------------------


def test_a_swap_mid_decision_never_mixes_two_sets_in_one_record(monkeypatch):
    plain = SCHEMA.replace("tenant: string\n  actions", "tenant: string\n  secret: string\n"
                           "  actions") + ALLOW
    masked = plain.replace("secret: string", "secret: string sensitive")
    a, b = compile_text(plain, "a.policy"), compile_text(masked, "b.policy")
    records = []
    engine = Engine(a, decision_sink=records.append, log_attributes=True)
    original = Engine._check

    def swapping(self, *args, **kwargs):  # a reload lands while the decision runs
        self.swap(b)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "_check", swapping)
    request = doc_request("t1", "t1")
    request["resource"]["attrs"]["secret"] = "4111 1111 1111 1111"
    decision = engine.check(request)
    record = records[0]
    assert record["policy_version"] == decision.policy_version
    secret = record["resource"]["attrs"]["secret"]
    assert secret == ("***" if decision.policy_version == b.version else "4111 1111 1111 1111")


# ---- 9. unknown resource types logged raw attributes -------------------------------------


def test_attributes_no_declaration_vouches_for_are_never_logged(tmp_path):
    log_path = tmp_path / "d.jsonl"
    dlog = DecisionLog(str(log_path))
    engine = Engine.from_path(EXAMPLES / "orders", decision_sink=dlog.emit,
                              log_attributes=True)
    request = req(user(), "read", {"type": "Card", "id": "c1",
                                   "attrs": {"number": "4111111111111111",
                                             "limit": float("nan"), "x": float("inf")}})
    assert engine.check(request).reasons == ["unknown_resource"]
    dlog.emit({"decision_id": "raw", "resource": {"attrs": {"v": float("nan")}}})
    dlog.close()

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    lines = [json.loads(line, parse_constant=refuse) for line in log_path.read_text().splitlines()]
    assert len(lines) == 2
    assert "attrs" not in lines[0]["resource"] and "4111" not in log_path.read_text()
    assert lines[0]["principal"]["attrs"]["tenant"] == "t1"  # a declared type's attributes
    assert lines[1]["attrs_omitted"] == "not representable as JSON"


# ---- 10. an empty principal id owned every resource with an empty owner ------------------


@pytest.mark.parametrize("part", ["principal", "resource"])
def test_empty_ids_are_request_errors(part):
    engine = Engine.from_path(EXAMPLES / "orders")
    request = req(user(), "update", order(owner=""))
    request[part]["id"] = ""
    with pytest.raises(RequestError, match=f"{part}.id must not be empty"):
        engine.check(request)
    with pytest.raises(RequestError, match="must not be empty"):
        engine.check_batch(request["principal"], [{"resource": request["resource"],
                                                   "actions": ["update"]}], OFFICE)


def test_owns_is_false_for_an_empty_id_even_past_validation():
    ps = compile_text(SCHEMA + "policy own for Doc { allow update when principal owns resource }")
    decider = ps.deciders["Doc"]["update"]
    assert decider("", {"roles": [], "tenant": "t1"}, "d1", {"owner": "", "tenant": "t1"}, {},
                   "User") is None
    assert decider("bob", {"roles": [], "tenant": "t1"}, "d1", {"owner": "bob", "tenant": "t1"},
                   {}, "User") is not None


# ---- 11. a second server on a busy port started silently ----------------------------------


def test_a_second_server_on_a_busy_port_fails_at_start(tmp_path):
    first = ServeProcess(EXAMPLES / "orders", "--no-reload", tmp=tmp_path).wait_serving()
    second = None
    try:
        second = ServeProcess(EXAMPLES / "admin", "--no-reload", port=first.port, tmp=tmp_path)
        assert second.wait(20) == 1
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.log()
    finally:
        if second is not None:
            second.kill()
        first.terminate()


def test_a_port_held_by_any_socket_fails_at_start(tmp_path):
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        proc = ServeProcess(EXAMPLES / "orders", port=port, tmp=tmp_path)
        try:
            assert proc.wait(20) == 1
            assert "is another server running on this port?" in proc.log()
        finally:
            proc.kill()
