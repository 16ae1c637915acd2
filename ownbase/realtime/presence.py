"""Presence state: who is tracked on which channel, in Phoenix Presence shapes.

State ``{key: {"metas": [{"phx_ref": ..., **payload}]}}``; diffs ``{"joins": {...}, "leaves": {...}}``
travel on the bus. The store is in process memory, or in Redis when several processes share the
channels: a hash per topic holds every process's entries, and each process refreshes its
heartbeat in a sorted set; entries of a process whose heartbeat stopped (killed, crashed) are
removed by a survivor, which publishes their leaves.

Redis may go away (and come back empty): each process also keeps its own entries in memory, so
while Redis is unreachable presence keeps working within the process (``degraded``), and once it
is back the process re-publishes its entries (and removes those untracked meanwhile), so a
joiner on any process sees every socket still tracked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from ownbase.realtime.bus import REDIS_TIMEOUT, PresenceDiff, Publish
from ownbase.realtime.serializer import dumpb, loads

log = logging.getLogger("ownbase.realtime")

Entry = tuple[str, dict[str, Any]]  # (presence key, meta including phx_ref)


def as_state(entries: list[Entry]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key, meta in entries:
        state.setdefault(key, {"metas": []})["metas"].append(meta)
    return state


class PresenceStore(Protocol):
    degraded: bool

    async def add(self, topic: str, key: str, meta: dict[str, Any]) -> None: ...
    async def remove(self, topic: str, refs: list[str]) -> None: ...
    async def list(self, topic: str) -> list[Entry]: ...
    async def sweep(self, publish: Publish) -> None: ...
    async def close(self) -> None: ...


class LocalPresence:
    degraded = False

    def __init__(self) -> None:
        self._topics: dict[str, dict[str, Entry]] = {}

    async def add(self, topic: str, key: str, meta: dict[str, Any]) -> None:
        self._topics.setdefault(topic, {})[meta["phx_ref"]] = (key, meta)

    async def remove(self, topic: str, refs: list[str]) -> None:
        entries = self._topics.get(topic)
        if not entries:
            return
        for ref in refs:
            entries.pop(ref, None)
        if not entries:
            self._topics.pop(topic, None)

    async def list(self, topic: str) -> list[Entry]:
        return list(self._topics.get(topic, {}).values())

    def topics(self) -> set[str]:
        return set(self._topics)

    async def sweep(self, publish: Publish) -> None:
        return None

    async def close(self) -> None:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisPresence:
    def __init__(self, client: Any, namespace: str, proc: str, ttl: float) -> None:
        self._r = client
        self._ns = namespace
        self._proc = proc
        self._ttl = ttl
        self._own = LocalPresence()  # this process's entries: the truth to re-publish
        self.degraded = False  # Redis unreachable: presence works within this process only
        self._resync = True  # Redis may not hold exactly our entries: re-publish at the next sweep

    def _topic_key(self, topic: str) -> str:
        return f"{self._ns}:presence:{topic}"

    @property
    def _procs(self) -> str:
        return f"{self._ns}:procs"

    def _proc_topics(self, proc: str) -> str:
        return f"{self._ns}:proctopics:{proc}"

    @property
    def _marker(self) -> str:
        """Exists while Redis holds our entries; gone after a Redis restart, so we re-publish."""
        return f"{self._ns}:procmark:{self._proc}"

    def _failed(self, exc: Exception) -> None:
        if not self.degraded:
            log.warning("realtime: presence store unreachable (%s); presence is kept in this "
                        "process until Redis is back", exc)
        self.degraded = True
        self._resync = True

    def _value(self, key: str, meta: dict[str, Any]) -> bytes:
        return dumpb({"key": key, "meta": meta, "proc": self._proc})

    async def add(self, topic: str, key: str, meta: dict[str, Any]) -> None:
        await self._own.add(topic, key, meta)
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.hset(self._topic_key(topic), meta["phx_ref"], self._value(key, meta))
            pipe.sadd(self._proc_topics(self._proc), topic)
            pipe.zadd(self._procs, {self._proc: time.time()})
            await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - Redis down: kept locally, re-published later
            self._failed(exc)

    async def remove(self, topic: str, refs: list[str]) -> None:
        await self._own.remove(topic, refs)
        if not refs:
            return
        try:
            await asyncio.wait_for(self._r.hdel(self._topic_key(topic), *refs), REDIS_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - removed from Redis when it is back
            self._failed(exc)

    async def list(self, topic: str) -> list[Entry]:
        own = await self._own.list(topic)
        try:
            raw = await asyncio.wait_for(self._r.hgetall(self._topic_key(topic)), REDIS_TIMEOUT)
            alive = await asyncio.wait_for(self._alive(), REDIS_TIMEOUT) if raw else set()
        except Exception as exc:  # noqa: BLE001 - degraded: only what this process holds
            self._failed(exc)
            return own
        out: list[Entry] = list(own)
        for value in raw.values():
            item = loads(value)
            if item.get("proc") != self._proc and item.get("proc") in alive:
                out.append((item["key"], item["meta"]))
        return out

    async def _alive(self) -> set[str]:
        cutoff = time.time() - self._ttl
        members = await self._r.zrangebyscore(self._procs, cutoff, "+inf")
        return {_text(m) for m in members}

    async def sweep(self, publish: Publish) -> None:
        """Refresh our heartbeat; re-publish our entries if Redis lost them (or missed changes
        while unreachable); clear the entries of processes whose heartbeat stopped."""
        try:
            await asyncio.wait_for(self._sweep(publish), REDIS_TIMEOUT * 5)
        except Exception as exc:  # noqa: BLE001 - try again at the next sweep
            self._failed(exc)

    async def _sweep(self, publish: Publish) -> None:
        now = time.time()
        await self._r.zadd(self._procs, {self._proc: now})
        marked = await self._r.set(self._marker, "1", ex=max(60, int(self._ttl * 4)), xx=True)
        if self._resync or not marked:
            await self._republish(publish)
            await self._r.set(self._marker, "1", ex=max(60, int(self._ttl * 4)))
            if self.degraded:
                log.warning("realtime: presence store reachable again; entries re-published")
            self.degraded = self._resync = False
        await self._clear_dead(publish, now)

    async def _republish(self, publish: Publish) -> None:
        """Make Redis hold exactly our entries, and tell every process what changed."""
        topics = {_text(t) for t in await self._r.smembers(self._proc_topics(self._proc))}
        topics |= self._own.topics()
        for topic in topics:
            own = {meta["phx_ref"]: (key, meta) for key, meta in await self._own.list(topic)}
            stored = await self._r.hgetall(self._topic_key(topic))
            stale: list[Entry] = []
            stale_refs: list[Any] = []
            for ref, value in stored.items():
                item = loads(value)
                if item.get("proc") == self._proc and _text(ref) not in own:
                    stale_refs.append(ref)
                    stale.append((item["key"], item["meta"]))
            missing = [entry for ref, entry in own.items() if ref not in {_text(r) for r in stored}]
            pipe = self._r.pipeline(transaction=False)
            if stale_refs:
                pipe.hdel(self._topic_key(topic), *stale_refs)
            for key, meta in missing:
                pipe.hset(self._topic_key(topic), meta["phx_ref"], self._value(key, meta))
            if own:
                pipe.sadd(self._proc_topics(self._proc), topic)
            else:
                pipe.srem(self._proc_topics(self._proc), topic)
            await pipe.execute()
            if missing or stale:
                await publish(PresenceDiff(topic, as_state(missing), as_state(stale)))

    async def _clear_dead(self, publish: Publish, now: float) -> None:
        dead = await self._r.zrangebyscore(self._procs, "-inf", now - self._ttl)
        for raw_proc in dead:
            proc = _text(raw_proc)
            # One survivor cleans up a dead process.
            if not await self._r.set(f"{self._ns}:sweep:{proc}", self._proc, nx=True, ex=60):
                continue
            topics = await self._r.smembers(self._proc_topics(proc))
            for raw_topic in topics:
                topic = _text(raw_topic)
                entries = await self._r.hgetall(self._topic_key(topic))
                gone: list[Entry] = []
                refs: list[Any] = []
                for ref, value in entries.items():
                    item = loads(value)
                    if item.get("proc") == proc:
                        refs.append(ref)
                        gone.append((item["key"], item["meta"]))
                if refs:
                    await self._r.hdel(self._topic_key(topic), *refs)
                    await publish(PresenceDiff(topic, {}, as_state(gone)))
            await self._r.delete(self._proc_topics(proc))
            await self._r.zrem(self._procs, proc)
            log.info("realtime: cleared presence of stopped process %s", proc)

    async def close(self) -> None:
        """Graceful stop: our own entries were removed with our sockets; drop our heartbeat."""
        try:
            await asyncio.wait_for(self._r.zrem(self._procs, self._proc), REDIS_TIMEOUT)
            await asyncio.wait_for(self._r.delete(self._proc_topics(self._proc), self._marker), REDIS_TIMEOUT)
        except Exception:  # noqa: BLE001 - Redis gone: the survivors' sweep expires our heartbeat
            pass
