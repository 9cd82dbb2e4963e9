"""Rate rules (LANGUAGE.md decision step 8) with an injected clock, and the memory store."""

from __future__ import annotations

import pytest

from policyd import Engine, compile_text
from policyd.engine.ratelimit import MemoryStore, every

SCHEMA = """
principal User { roles: set<string> tenant: string }
context { ip: ip }
role admin
resource Account owned by owner {
  owner: string
  tenant: string
  actions login, read, refund
}
"""


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine(rules: str, store=None) -> tuple[Engine, Clock]:
    clock = Clock()
    text = SCHEMA + "policy acct for Account {\n" + rules + "\n  show id when true\n}\n"
    return Engine(compile_text(text, "rate.policy"), clock=clock, rate_store=store), clock


def request(action="login", uid="u1", ip="10.0.0.1", tenant="t1", dry=False, roles=()):
    r = {"principal": {"type": "User", "id": uid, "attrs": {"roles": list(roles),
                                                           "tenant": "t1"}},
         "action": action,
         "resource": {"type": "Account", "id": "a1", "attrs": {"owner": uid, "tenant": tenant}},
         "context": {"ip": ip}}
    if dry:
        r["dry_run"] = True
    return r


def test_gcra_arithmetic():
    store, bucket = MemoryStore(), [(("r", "k"), *every(12.0, 5.0))]  # 5 per minute, burst 5
    for _ in range(5):
        assert store.acquire(bucket, 0.0, False).retry_after == 0.0
    assert store.acquire(bucket, 0.0, False).retry_after == pytest.approx(12.0)
    assert store.acquire(bucket, 6.0, False).retry_after == pytest.approx(6.0)
    assert store.acquire(bucket, 12.0, False).passed
    assert store.acquire(bucket, 12.0, False).retry_after == pytest.approx(12.0)


def test_the_language_example_refunds_5_per_minute():
    e, clock = engine("  allow refund when true\n  limit refund: 5 per 1m by principal.id")
    decisions = [e.check(request("refund")) for _ in range(5)]
    assert all(d.allowed for d in decisions)
    limited = e.check(request("refund"))
    assert (limited.allowed, limited.reasons) == (False, ["rate_limited", "acct#2"])
    assert limited.retry_after == pytest.approx(12.0)
    clock.now += 11.9
    assert not e.check(request("refund")).allowed
    clock.now += 0.1
    assert e.check(request("refund")).allowed
    assert not e.check(request("refund")).allowed
    assert e.check(request("refund", uid="u2")).allowed  # another key, another bucket


def test_burst_and_refill():
    e, clock = engine("  allow read when true\n  fast: limit read: 10 per 1s burst 3 by "
                      "principal.id")
    assert [e.check(request("read")).allowed for _ in range(4)] == [True, True, True, False]
    clock.now += 0.1  # one token back (interval 0.1 s)
    assert [e.check(request("read")).allowed for _ in range(2)] == [True, False]
    clock.now += 10  # full again, but never more than the burst
    assert [e.check(request("read")).allowed for _ in range(4)] == [True, True, True, False]


def test_several_limits_are_all_or_nothing():
    rules = """  allow login when true
  per_user: limit login: 3 per 1h by principal.id
  per_ip: limit login: 2 per 1h by context.ip"""
    e, clock = engine(rules)
    assert e.check(request(uid="a", ip="10.0.0.1")).allowed
    assert e.check(request(uid="a", ip="10.0.0.2")).allowed
    assert e.check(request(uid="b", ip="10.0.0.1")).allowed  # per_ip for .1 now empty
    blocked = e.check(request(uid="a", ip="10.0.0.1"))
    assert blocked.reasons == ["rate_limited", "acct.per_ip"]
    # the refused request took no token from per_user: "a" still has one left
    assert e.check(request(uid="a", ip="10.0.0.3")).allowed
    both = e.check(request(uid="a", ip="10.0.0.1"))
    assert both.reasons == ["rate_limited", "acct.per_user", "acct.per_ip"]
    assert both.retry_after == pytest.approx(1800.0)  # per_ip (1800 s) is later than per_user (1200 s)


def test_keys_with_several_parts_and_conditions():
    rules = """  allow read when true
  by_pair: limit read: 1 per 1h by principal.id, resource.tenant
  admins: limit read: 1 per 1h by principal.id when principal is admin"""
    e, _ = engine(rules)
    assert e.check(request("read", tenant="t1")).allowed
    assert e.check(request("read", tenant="t2")).allowed  # another key part
    assert e.check(request("read", tenant="t1")).reasons == ["rate_limited", "acct.by_pair"]
    assert e.check(request("read", uid="boss", roles=["admin"], tenant="t9")).allowed
    limited = e.check(request("read", uid="boss", roles=["admin"], tenant="t8"))
    assert limited.reasons == ["rate_limited", "acct.admins"]


def test_refused_requests_count_too():
    rules = """  guard: deny login when principal.id == "mallory"
  allow login when true
  limit login: 3 per 1h by context.ip"""
    e, _ = engine(rules)
    for _ in range(3):
        d = e.check(request(uid="mallory"))
        assert d.reasons == ["acct.guard"]
    brute = e.check(request(uid="mallory"))
    assert brute.reasons == ["acct.guard", "rate_limited", "acct#3"]
    assert e.check(request(uid="alice")).reasons == ["rate_limited", "acct#3"]  # same ip


def test_dry_run_reports_and_consumes_nothing():
    e, _ = engine("  allow login when true\n  limit login: 1 per 1h by principal.id")
    assert e.check(request(dry=True)).allowed
    assert e.check(request(dry=True)).allowed
    assert e.check(request()).allowed  # the one token was still there
    dry = e.check(request(dry=True))
    assert dry.reasons == ["rate_limited", "acct#2"] and dry.retry_after > 0


def test_batches_count_every_pair():
    e, _ = engine("  allow read when true\n  limit read: 2 per 1h by principal.id")
    p = request()["principal"]
    items = [{"resource": request()["resource"], "actions": ["read", "read", "read"]}]
    assert [d.allowed for d in e.check_batch(p, items, {"ip": "10.0.0.1"})] == \
        [True, True, False]


def test_memory_store_is_bounded_and_drops_full_buckets_first():
    store = MemoryStore(max_keys=100)
    now = 0.0
    for i in range(50):  # 50 buckets that refill completely within a second
        store.acquire([(("short", i), *every(0.001, 1.0))], now, False)
    for i in range(50):  # 50 long-lived buckets
        store.acquire([(("long", i), *every(3600.0, 1.0))], now, False)
    assert len(store) == 100
    now = 10.0
    for i in range(50):  # 50 new ones: the full "short" buckets go first
        store.acquire([(("new", i), *every(3600.0, 1.0))], now, False)
    assert len(store) == 100
    assert all(k[0] != "short" for k in store._tat)
    for i in range(1000):  # then least recently used
        store.acquire([(("more", i), *every(3600.0, 1.0))], now, False)
    assert len(store) == 100
    assert {k[0] for k in store._tat} == {"more"}


def test_a_touched_bucket_is_kept_even_when_it_refused():
    """Eviction is least recently used, and a refusal is a use: flooding new keys must not
    reset a bucket someone is being refused from."""
    store = MemoryStore(max_keys=3)
    hour = 3600.0

    def take(*names):
        return store.acquire([((n,), *every(hour, 1.0)) for n in names], 0.0, False).passed

    assert take("a") and take("b") and take("c")
    assert not take("a")  # refused, and now the most recently used
    assert take("d")  # the least recently used goes: b
    assert [k[0] for k in store._tat] == ["c", "a", "d"]
    assert not take("a")  # still exhausted
    assert not take("c", "e")  # refused for c; e is not created
    assert [k[0] for k in store._tat] == ["d", "a", "c"]
    assert take("f")  # d is the least recently used now
    assert [k[0] for k in store._tat] == ["a", "c", "f"]


def test_memory_store_is_thread_safe():
    import threading

    store = MemoryStore()
    passed = []

    def take():
        for _ in range(200):
            passed.append(store.acquire([(("r", "k"), *every(3600.0, 100.0))], 0.0, False).passed)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert passed.count(True) == 100  # exactly the burst, however the threads interleave


def test_the_examples_rate_rules():
    from .conftest import EXAMPLES, order, req, user

    clock = Clock()
    orders = Engine.from_path(EXAMPLES / "orders", clock=clock)
    bob = user("bob", roles=["support"], mfa=True)
    refunds = [orders.check(req(bob, "refund", order(), {"ip": "10.9.9.9"})) for _ in range(6)]
    assert [d.allowed for d in refunds] == [True] * 5 + [False]
    assert refunds[-1].reasons == ["rate_limited", "orders#12"]
    clock.now += 12
    assert orders.check(req(bob, "refund", order(), {"ip": "10.9.9.9"})).allowed
    reads = [orders.check(req(bob, "read", order())) for _ in range(20)]
    assert reads[-1].reasons == ["rate_limited", "orders#13"]  # 100/s, burst 20, all actions

    admin = Engine.from_path(EXAMPLES / "admin", clock=clock)
    session = {"type": "Session", "id": "s1", "attrs": {"username": "sam"}}
    staff = {"type": "Staff", "id": "sam", "attrs": {"roles": ["sre"], "mfa": True,
                                                      "team": "platform"}}
    attempts = [admin.check({"principal": staff, "action": "login", "resource": session,
                             "context": {"ip": "10.1.1.1"}}) for _ in range(6)]
    assert [d.allowed for d in attempts] == [True] * 5 + [False]
    assert attempts[-1].reasons == ["rate_limited", "sessions.login_throttle"]
    assert attempts[-1].retry_after == pytest.approx(180.0)
