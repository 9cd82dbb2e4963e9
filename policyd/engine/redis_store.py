"""Rate buckets shared through Redis, so every replica enforces one limit.

One script call per batch: the decisions that reach their rate step while another
batch is in flight wait for it and then go together (`combining.Combiner`), so
concurrent requests share one round trip. The Lua script (EVALSHA; reloaded on
NOSCRIPT) takes Redis's own TIME as the clock, so replicas never disagree over time,
and decides the requests of a batch one after another, each taking a token from all
of its buckets or from none: exactly what they would get one call each, in that
order. Each key gets a TTL that ends when its bucket would be full again, so Redis
memory stays bounded. Key names are the prefix and a hash of (rule, key values): no
raw request data becomes a key name. The cluster mode is not supported (the keys of
one batch must live on one node).
"""

from __future__ import annotations

import hashlib
import logging
import time
from hashlib import blake2b as _blake2b

import redis

from .combining import Combiner
from .ratelimit import PASSED, Bucket, RateStore, StoreUnavailable, Verdict

log = logging.getLogger("policyd.ratelimit")

# KEYS: every request's bucket keys, request after request. ARGV, per request: "1" for a
# dry run, its bucket count n, then n pairs of T and B * T (whole microseconds: every
# number here is an integer below 2**53, exact in Lua's doubles; engine/ratelimit.py).
# Returns one string per request: the retry in microseconds, then the 1-based indexes of
# its exhausted buckets, space-separated ("0" when it passed).
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, k, a = {}, 1, 1
while a <= #ARGV do
  local dry = ARGV[a] == '1'
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local planned, exhausted, retry = {}, {}, 0
  for i = 0, n - 1 do
    local interval = tonumber(ARGV[a + 2 * i])
    local limit = tonumber(ARGV[a + 2 * i + 1])
    local tat = tonumber(redis.call('GET', KEYS[k + i]))
    if tat == nil or tat < now then tat = now end
    local new_tat = tat + interval
    local wait = new_tat - limit - now
    if wait > 0 then
      exhausted[#exhausted + 1] = i + 1
      if wait > retry then retry = wait end
    end
    planned[i] = new_tat
  end
  if #exhausted == 0 and not dry then
    for i = 0, n - 1 do
      local ttl = math.ceil((planned[i] - now) / 1000) + 1
      redis.call('SET', KEYS[k + i], string.format('%.0f', planned[i]), 'PX', ttl)
    end
  end
  local r = string.format('%.0f', retry)
  for j = 1, #exhausted do r = r .. ' ' .. exhausted[j] end
  out[#out + 1] = r
  k = k + n
  a = a + 2 * n
end
return out
"""
SHA = hashlib.sha1(GCRA_LUA.encode()).hexdigest()  # how EVALSHA names a script: an id, not a MAC

_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
             redis.exceptions.ResponseError, OSError)


def _canonical(value):
    """1 and 1.0 are one key (gRPC sends every number as a double)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _digest(bucket_key: tuple) -> str:
    if float in map(type, bucket_key):
        bucket_key = tuple(_canonical(k) for k in bucket_key)
    return _blake2b(repr(bucket_key).encode(), digest_size=16).hexdigest()


# The command is written here, not by redis-py's packer: it is the same few shapes every
# time, and packing them field by field cost more than the rest of the call.
def _bulk_head(length: int) -> bytes:
    return b"$%d\r\n" % length


def _bulk(data: bytes) -> bytes:
    return _bulk_head(len(data)) + data + b"\r\n"


def _limit_args(interval: float, limit: float) -> bytes:
    return _bulk(b"%d" % interval) + _bulk(b"%d" % limit)


_SHA_ARG = _bulk(SHA.encode())
_DRY, _LIVE = _bulk(b"1"), _bulk(b"0")


class RedisStore(RateStore):
    name = "redis"

    def __init__(self, url: str, prefix: str = "policyd:", timeout: float = 0.05,
                 backoff: float = 0.5, max_batch: int = 64):
        self.prefix = prefix
        self.backoff = backoff
        self._pool = redis.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False)
        self._conn = self._pool.make_connection()  # only a batch's leader uses it
        self.combiner = Combiner(self.run, max_batch, patience=max(1.0, 40 * timeout),
                                 timeout_error=StoreUnavailable)
        self._down_until = 0.0
        self._down = False
        self._key_head = _bulk_head(len(prefix.encode()) + 32) + prefix.encode()
        self._limits: dict[tuple, bytes] = {}  # (T, B * T) -> its two arguments

    def acquire(self, buckets: list[Bucket], now: float, dry_run: bool) -> Verdict:
        if self._resting():
            raise StoreUnavailable("rate store down")  # fail fast during an outage
        return self.verdict(buckets, self.combiner.submit(self.prepare(buckets, dry_run)))

    def prepare(self, buckets: list[Bucket], dry_run: bool) -> tuple:
        """One request's part of a batch's command: its keys, its arguments and their
        count, already in the wire format."""
        head, limits = self._key_head, self._limits
        keys = []
        args = [_DRY if dry_run else _LIVE, _bulk(str(len(buckets)).encode())]
        for key, interval, limit in buckets:
            keys.append(head + _digest(key).encode() + b"\r\n")
            arg = limits.get((interval, limit))
            if arg is None:
                arg = limits[(interval, limit)] = _limit_args(interval, limit)
            args.append(arg)
        return keys, args, 2 + 2 * len(buckets)

    @staticmethod
    def verdict(buckets: list[Bucket], reply: bytes) -> Verdict:
        """The script's reply for one request, as the engine's Verdict."""
        if reply == b"0":
            return PASSED
        retry, *indexes = reply.split()
        exhausted = tuple(buckets[int(i) - 1][0][0] for i in indexes)
        return Verdict(exhausted, int(retry) / 1_000_000) if exhausted else PASSED

    def run(self, items: list) -> list:
        """One script call for a batch of `prepare`d requests: each one's reply, or its
        own StoreUnavailable."""
        if self._resting():  # it went down while these waited
            return [StoreUnavailable("rate store down") for _ in items]
        nkeys = sum(len(keys) for keys, _, _ in items)
        nargs = sum(n for _, _, n in items)
        parts = [b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + nkeys + nargs), _SHA_ARG,
                 _bulk(str(nkeys).encode())]
        for keys, _, _ in items:
            parts += keys
        for _, args, _ in items:
            parts += args
        try:
            replies = self._call(b"".join(parts))
        except _FAILURES as exc:
            self._went_down(exc)
            return [StoreUnavailable(str(exc)) for _ in items]
        if self._down:
            self._down = False
            log.warning("rate store recovered")
        return replies

    def _call(self, command: bytes) -> list:
        conn = self._conn
        try:
            try:
                conn.send_packed_command((command,))
                return conn.read_response()
            except redis.exceptions.NoScriptError:  # a restart or SCRIPT FLUSH: load, retry
                conn.send_command("SCRIPT", "LOAD", GCRA_LUA)
                conn.read_response()
                conn.send_packed_command((command,))
                return conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # the reply was read whole: the connection is still in step
        except BaseException:
            conn.disconnect()  # a half-read reply must never answer the next batch
            raise

    def _resting(self) -> bool:
        """Within the backoff after a failure: answer at once instead of waiting on it."""
        return self._down and time.monotonic() < self._down_until

    def _went_down(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self.backoff
        if not self._down:
            self._down = True
            log.error("rate store unavailable: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        self._conn.disconnect()
        self._pool.disconnect()
