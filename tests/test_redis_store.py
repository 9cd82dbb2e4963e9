"""The Redis rate store against a real redis-server (started here on a free port), and two
`policyd serve` processes sharing one limit through it."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time

import pytest
import redis

from policyd import Engine, compile_text
from policyd.client import DecisionClient
from policyd.engine.ratelimit import every
from policyd.engine.redis_store import RedisStore

from .servers import ServeProcess, free_port, health_status

REDIS = shutil.which("redis-server")
if REDIS is None:  # CI installs it (.ci/run); there a missing server is a failure
    if os.environ.get("CI"):
        raise RuntimeError("redis-server is required in CI")
    pytest.skip("redis-server not installed", allow_module_level=True)


class RedisServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        end = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.exceptions.ConnectionError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture
def server():
    s = RedisServer().start()
    yield s
    s.stop()


def test_gcra_in_redis(server):
    store = RedisStore(server.url)
    bucket = [(("orders#12", "alice"), *every(12.0, 5.0))]
    assert [store.acquire(bucket, 0, False).passed for _ in range(5)] == [True] * 5
    limited = store.acquire(bucket, 0, False)
    assert limited.exhausted == ("orders#12",)
    assert 11.5 < limited.retry_after <= 12.0  # Redis's own clock has moved a little
    assert store.acquire([(("orders#12", "bob"), *every(12.0, 5.0))], 0, False).passed


def test_all_or_nothing_and_dry_run(server):
    store = RedisStore(server.url)
    a, b = (("a", "k"), *every(3600.0, 2.0)), (("b", "k"), *every(3600.0, 1.0))
    assert store.acquire([a, b], 0, dry_run=True).passed
    assert store.acquire([a, b], 0, False).passed
    refused = store.acquire([a, b], 0, False)
    assert refused.exhausted == ("b",)
    assert store.acquire([a], 0, False).passed  # `a` lost nothing to the refused request
    assert store.acquire([a], 0, False).exhausted == ("a",)


def test_keys_are_hashed_bounded_by_ttl_and_numbers_are_canonical(server):
    store = RedisStore(server.url, prefix="test:")
    store.acquire([(("r", "alice'); DROP", 1.0), *every(60.0, 1.0))], 0, False)
    assert not store.acquire([(("r", "alice'); DROP", 1), *every(60.0, 1.0))], 0, False).passed
    keys = server.client().keys("*")
    assert len(keys) == 1 and re.fullmatch(rb"test:[0-9a-f]{32}", keys[0])
    assert 0 < server.client().pttl(keys[0]) <= 60_001


def test_script_is_reloaded_after_noscript(server):
    store = RedisStore(server.url)
    assert store.acquire([(("r", "k"), *every(1.0, 2.0))], 0, False).passed
    server.client().script_flush()
    assert store.acquire([(("r", "k"), *every(1.0, 2.0))], 0, False).passed


def test_one_batch_decides_its_requests_in_order_each_all_or_nothing(server):
    store = RedisStore(server.url)
    one = [(("r", "k"), *every(3600.0, 2.0))]
    both = [(("r", "k"), *every(3600.0, 2.0)), (("s", "k"), *every(3600.0, 5.0))]
    requests = [(one, True), (one, False), (both, False), (both, False), (one, False),
                ([(("s", "k"), *every(3600.0, 5.0))], False)]
    replies = store.run([store.prepare(b, dry) for b, dry in requests])
    verdicts = [store.verdict(b, reply) for (b, _), reply in zip(requests, replies, strict=True)]
    # a dry run takes nothing; the third request takes r's last token; the fourth finds
    # r empty and takes nothing from s either, so s still has 4 tokens for the last one
    assert [v.passed for v in verdicts] == [True, True, True, False, False, True]
    assert verdicts[3].exhausted == ("r",) and 3500 < verdicts[3].retry_after <= 3600
    assert store.acquire([(("s", "k"), *every(3600.0, 5.0))], 0, False).passed


def test_concurrent_requests_share_round_trips_and_stay_exact(server):
    store = RedisStore(server.url, timeout=1.0)
    bucket = [(("r", "shared"), *every(3600.0, 100.0))]
    passed = []

    def worker():
        for _ in range(40):
            passed.append(store.acquire(bucket, 0, False).passed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(passed) == 320 and passed.count(True) == 100  # exactly the burst
    assert store.combiner.items == 320


def test_a_unix_socket_url_reaches_redis(tmp_path):
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen([REDIS, "--port", "0", "--unixsocket", str(sock), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < end, "redis-server made no socket"
            time.sleep(0.05)
        store = RedisStore(f"unix://{sock}?db=0")
        bucket = [(("r", "k"), *every(60.0, 1.0))]
        assert store.acquire(bucket, 0, False).passed
        assert store.acquire(bucket, 0, False).exhausted == ("r",)
        store.close()
    finally:
        proc.kill()
        proc.wait()


LOGIN = """
principal User { roles: set<string> }
context { ip: ip }
resource Session { actions login }
policy s for Session {
  allow login when true
  throttle: limit login: 3 per 1h by context.ip
}
"""


def _login(ip="10.0.0.1"):
    return {"principal": {"type": "User", "id": "u", "attrs": {"roles": []}}, "action": "login",
            "resource": {"type": "Session", "id": "s"}, "context": {"ip": ip}}


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_outage_modes_log_once_and_recover(mode, caplog):
    redis_server = RedisServer()
    store = RedisStore(redis_server.url, timeout=0.05, backoff=0.2)
    engine = Engine(compile_text(LOGIN), rate_store=store, rate_failure=mode)
    with caplog.at_level(logging.WARNING, "policyd.ratelimit"):
        during = [engine.check(_login()) for _ in range(20)]
        time.sleep(0.3)
        during += [engine.check(_login()) for _ in range(5)]  # a second probe, still down
        if mode == "open":
            assert all(d.allowed for d in during)  # rate rules pass; policy still decides
        else:
            assert all(d.reasons == ["rate_store_unavailable"] for d in during)
        assert caplog.text.count("rate store unavailable") == 1
        redis_server.start()
        try:
            time.sleep(0.3)  # past the backoff
            after = [engine.check(_login()) for _ in range(4)]
            assert [d.allowed for d in after] == [True, True, True, False]
            assert after[-1].reasons == ["rate_limited", "s.throttle"]
            assert "rate store recovered" in caplog.text
        finally:
            redis_server.stop()


def test_two_servers_share_one_limit_and_survive_an_outage(server, tmp_path):
    policy = tmp_path / "login.policy"
    policy.write_text(LOGIN)
    common = ("--rate-store", server.url, "--rate-failure", "closed", "--no-reload")
    a = ServeProcess(policy, *common, tmp=tmp_path).wait_serving()
    b = ServeProcess(policy, *common, tmp=tmp_path).wait_serving()
    try:
        with DecisionClient(a.target, timeout=5) as ca, DecisionClient(b.target, timeout=5) as cb:
            decisions = [(ca if i % 2 else cb).check(_login()) for i in range(8)]
            assert [d.allowed for d in decisions] == [True] * 3 + [False] * 5
            assert decisions[-1].reasons == ["rate_limited", "s.throttle"]
            server.stop()  # Redis goes away mid-run
            down = [ca.check(_login("10.0.0.2")), cb.check(_login("10.0.0.2"))]
            assert all(d.reasons == ["rate_store_unavailable"] for d in down)
            assert health_status(a.target) == health_status(b.target) == 1  # still SERVING
            server.start()
            time.sleep(0.8)
            assert ca.check(_login("10.0.0.3")).allowed  # recovered by itself
    finally:
        assert a.terminate() == 0 and b.terminate() == 0
    assert "rate store unavailable" in a.log() and "Traceback" not in a.log() + b.log()


@pytest.mark.parametrize("flags, threads", [
    ({}, 2),
    ({"rate_store": "redis://127.0.0.1:6379/0"}, 4),
    ({"rate_store": "unix:///run/redis.sock?db=0"}, 4),
    ({"rate_store": "redis://127.0.0.1:6379/0", "threads": 3}, 3),
    ({"threads": 1}, 1),
])
def test_request_threads_default_to_four_with_redis(flags, threads):
    from policyd.server.config_file import build_config

    assert build_config(None, {"path": "x", **flags}).request_threads == threads


def test_a_rate_store_url_of_another_scheme_is_refused():
    from policyd.server.config_file import ConfigError, build_config

    with pytest.raises(ConfigError, match="redis://, rediss:// or unix://"):
        build_config(None, {"path": "x", "rate_store": "memcached://h"})


def test_exactly_the_burst_passes_at_once_in_redis_as_in_memory(server):
    """Issue 28, item 12: the script's arithmetic is the memory store's, exact, for every
    combination (periods long enough that no token comes back during the calls)."""
    from policyd.engine.ratelimit import MemoryStore, rate

    store = RedisStore(server.url, timeout=1.0)
    for i, (count, period, burst) in enumerate(
            (c, p, b) for c in (1, 2, 3, 5, 7, 10, 60) for p in (60, 900, 3600, 86400)
            for b in (None, 1, 3, 60)):
        bucket = [(("r", f"k{i}"), *rate(count, period, burst))]
        limit = count if burst is None else burst
        got = [store.acquire(bucket, 0, False).passed for _ in range(limit + 1)]
        assert got == [True] * limit + [False], (count, period, burst)
        memory = MemoryStore()
        assert [memory.acquire(bucket, 1_764_000_000.25, False).passed
                for _ in range(limit + 1)] == got
