"""Rate buckets shared through Redis, so every replica enforces one limit.

One round trip per decision: a Lua script (EVALSHA; redis-py reloads it on
NOSCRIPT) checks every applicable bucket with Redis's own TIME as the clock, so
replicas never disagree over time, and takes a token from all or none. Each key
gets a TTL that ends when its bucket would be full again, so Redis memory stays
bounded. Key names are the prefix and a hash of (rule, key values): no raw
request data becomes a key name. The cluster mode is not supported (the keys of
one decision must live on one node).
"""

from __future__ import annotations

import hashlib
import logging
import time

import redis

from .ratelimit import PASSED, Bucket, RateStore, StoreUnavailable, Verdict

log = logging.getLogger("policyd.ratelimit")

# KEYS: bucket keys. ARGV[1]: "1" for a dry run; then per bucket: interval and burst,
# in microseconds and tokens. Returns {retry microseconds, exhausted bucket indexes...}.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local dry = ARGV[1] == '1'
local planned, exhausted, retry = {}, {}, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  local new_tat = tat + interval
  local wait = new_tat - burst * interval - now
  if wait > 0 then
    exhausted[#exhausted + 1] = i
    if wait > retry then retry = wait end
  end
  planned[i] = new_tat
end
if #exhausted == 0 and not dry then
  for i = 1, #KEYS do
    local ttl = math.ceil((planned[i] - now) / 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.0f', planned[i]), 'PX', ttl)
  end
end
local out = {string.format('%.0f', retry)}
for j = 1, #exhausted do out[#out + 1] = exhausted[j] end
return out
"""

_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
             redis.exceptions.ResponseError, OSError)


def _canonical(value):
    """1 and 1.0 are one key (gRPC sends every number as a double)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


class RedisStore(RateStore):
    name = "redis"

    def __init__(self, url: str, prefix: str = "policyd:", timeout: float = 0.05,
                 backoff: float = 0.5, max_connections: int = 64):
        self.prefix = prefix
        self.backoff = backoff
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False,
            max_connections=max_connections)
        self._script = self._client.register_script(GCRA_LUA)
        self._down_until = 0.0
        self._down = False

    def key(self, bucket_key: tuple) -> str:
        """The prefix and a hash of (rule, key values): no request data in key names."""
        material = repr(tuple(_canonical(k) for k in bucket_key)).encode()
        return self.prefix + hashlib.blake2b(material, digest_size=16).hexdigest()

    def acquire(self, buckets: list[Bucket], now: float, dry_run: bool) -> Verdict:
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailable("rate store down")  # fail fast during an outage
        keys = [self.key(key) for key, _, _ in buckets]
        args: list = ["1" if dry_run else "0"]
        for _, interval, burst in buckets:
            args += [max(1, round(interval * 1_000_000)), repr(float(burst))]
        try:
            reply = self._script(keys=keys, args=args)
        except _FAILURES as exc:
            self._went_down(exc)
            raise StoreUnavailable(str(exc)) from None
        if self._down:
            self._down = False
            log.warning("rate store recovered")
        exhausted = tuple(buckets[int(i) - 1][0][0] for i in reply[1:])
        return Verdict(exhausted, int(reply[0]) / 1_000_000) if exhausted else PASSED

    def _went_down(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self.backoff
        if not self._down:
            self._down = True
            log.error("rate store unavailable: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        self._client.close()
