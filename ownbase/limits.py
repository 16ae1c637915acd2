"""Token-bucket rate limiting, in process memory or in Redis (shared by every process).

A bucket holds ``limit`` tokens and refills at ``limit / window`` tokens per second. Counters are
disposable: losing Redis only resets budgets, so while Redis is unreachable each process counts on
its own (``SharedRateLimiter``) and goes back to the shared counters once Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("ownbase.limits")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until one token is available (0 when allowed)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float, cost: float = 1.0) -> Decision: ...


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window: float, cost: float = 1.0) -> Decision:
        if limit <= 0:
            return Decision(True, 0)
        rate = limit / window
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(limit), now))
        tokens = min(float(limit), tokens + (now - stamp) * rate)
        if tokens >= cost:
            self._store(key, tokens - cost, now)
            return Decision(True, 0)
        self._store(key, tokens, now)
        return Decision(False, max(1, math.ceil((cost - tokens) / rate)))

    def _store(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            # Drop the oldest half; full buckets are indistinguishable from absent ones anyway.
            for old in list(self._buckets)[: self._max_keys // 2]:
                del self._buckets[old]
        self._buckets[key] = (tokens, now)


_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'stamp')
local tokens = tonumber(state[1]) or limit
local stamp = tonumber(state[2]) or now
tokens = math.min(limit, tokens + (now - stamp) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', key, math.ceil(limit / rate * 1000) + 1000)
if allowed == 1 then return {1, 0} end
return {0, math.ceil((cost - tokens) / rate)}
"""


class RedisRateLimiter:
    def __init__(self, client: Any, prefix: str = "ownbase:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_LUA)

    async def hit(self, key: str, limit: int, window: float, cost: float = 1.0) -> Decision:
        if limit <= 0:
            return Decision(True, 0)
        allowed, retry = await self._script(keys=[self._prefix + key], args=[limit, limit / window, cost])
        return Decision(bool(int(allowed)), max(0, int(retry)) if not int(allowed) else 0)


# Reconnection probes while Redis is down: 0.25 s, 0.5 s, 1 s ... at most every 5 s.
PROBE_FIRST = 0.25
PROBE_MAX = 5.0


class SharedRateLimiter:
    """Redis counters while Redis answers; per-process counters while it does not.

    A request never waits on a dead Redis for longer than ``timeout``: the first failure switches
    the process to local counters (logged once), and from then on no request touches Redis; a
    background probe reconnects with backoff and switches back (logged once) when Redis answers.
    """

    def __init__(self, client: Any, timeout: float = 0.5, prefix: str = "ownbase:rl:") -> None:
        self._client = client
        self._timeout = timeout
        self._redis = RedisRateLimiter(client, prefix)
        self._local: MemoryRateLimiter | None = None  # set while degraded
        self._probe: asyncio.Task[None] | None = None
        self._since = 0.0
        self.outages = 0  # transitions to local counters
        self.local_decisions = 0  # requests decided by local counters, over the process's life

    @property
    def degraded(self) -> bool:
        return self._local is not None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"degraded": self.degraded, "cause": "redis",
                               "counters": "local" if self.degraded else "redis",
                               "outages": self.outages, "local_decisions": self.local_decisions}
        if self.degraded:
            out["degraded_for_s"] = round(time.monotonic() - self._since, 1)
        return out

    async def hit(self, key: str, limit: int, window: float, cost: float = 1.0) -> Decision:
        if self._local is None:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._redis.hit(key, limit, window, cost)
            except Exception as exc:  # noqa: BLE001 - any Redis failure: count locally
                self._degrade(exc)
        assert self._local is not None
        self.local_decisions += 1
        return await self._local.hit(key, limit, window, cost)

    def _degrade(self, exc: BaseException) -> None:
        if self._local is not None:
            return
        self._local = MemoryRateLimiter()
        self._since = time.monotonic()
        self.outages += 1
        log.warning("redis unreachable (%s): rate limits are counted per process until it is back",
                    type(exc).__name__)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = PROBE_FIRST
        while True:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self._timeout):
                    await self._client.ping()
            except Exception:  # noqa: BLE001 - still down
                delay = min(delay * 2, PROBE_MAX)
                continue
            self._local = None
            log.warning("redis is back: rate limits are shared again (down %.1f s)",
                        time.monotonic() - self._since)
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
