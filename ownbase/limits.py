"""Token-bucket rate limiting, in process memory or in Redis (shared by every process).

A bucket holds ``limit`` tokens and refills at ``limit / window`` tokens per second. Counters are
disposable: losing Redis only resets budgets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol


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
