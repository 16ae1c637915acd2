"""Presence state: who is tracked on which channel, in Phoenix Presence shapes.

State ``{key: {"metas": [{"phx_ref": ..., **payload}]}}``; diffs ``{"joins": {...}, "leaves": {...}}``
travel on the bus. The store is in process memory, or in Redis when several processes share the
channels: a hash per topic holds every process's entries, and each process refreshes its
heartbeat in a sorted set; entries of a process whose heartbeat stopped (killed, crashed) are
removed by a survivor, which publishes their leaves.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Protocol

from ownbase.realtime.serializer import dumpb, loads

log = logging.getLogger("ownbase.realtime")

Entry = tuple[str, dict[str, Any]]  # (presence key, meta including phx_ref)
Publish = Callable[[dict[str, Any]], Awaitable[None]]


def as_state(entries: list[Entry]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key, meta in entries:
        state.setdefault(key, {"metas": []})["metas"].append(meta)
    return state


class PresenceStore(Protocol):
    async def add(self, topic: str, key: str, meta: dict[str, Any]) -> None: ...
    async def remove(self, topic: str, refs: list[str]) -> None: ...
    async def list(self, topic: str) -> list[Entry]: ...
    async def sweep(self, publish: Publish) -> None: ...
    async def close(self) -> None: ...


class LocalPresence:
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

    async def sweep(self, publish: Publish) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisPresence:
    def __init__(self, client: Any, namespace: str, proc: str, ttl: float) -> None:
        self._r = client
        self._ns = namespace
        self._proc = proc
        self._ttl = ttl

    def _topic_key(self, topic: str) -> str:
        return f"{self._ns}:presence:{topic}"

    @property
    def _procs(self) -> str:
        return f"{self._ns}:procs"

    def _proc_topics(self, proc: str) -> str:
        return f"{self._ns}:proctopics:{proc}"

    async def add(self, topic: str, key: str, meta: dict[str, Any]) -> None:
        value = dumpb({"key": key, "meta": meta, "proc": self._proc})
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(self._topic_key(topic), meta["phx_ref"], value)
        pipe.sadd(self._proc_topics(self._proc), topic)
        pipe.zadd(self._procs, {self._proc: time.time()})
        await pipe.execute()

    async def remove(self, topic: str, refs: list[str]) -> None:
        if refs:
            await self._r.hdel(self._topic_key(topic), *refs)

    async def list(self, topic: str) -> list[Entry]:
        raw = await self._r.hgetall(self._topic_key(topic))
        if not raw:
            return []
        alive = await self._alive()
        out: list[Entry] = []
        for value in raw.values():
            item = loads(value)
            if item.get("proc") in alive:
                out.append((item["key"], item["meta"]))
        return out

    async def _alive(self) -> set[str]:
        cutoff = time.time() - self._ttl
        members = await self._r.zrangebyscore(self._procs, cutoff, "+inf")
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    async def sweep(self, publish: Publish) -> None:
        """Refresh our heartbeat; clear the entries of processes whose heartbeat stopped."""
        now = time.time()
        await self._r.zadd(self._procs, {self._proc: now})
        dead = await self._r.zrangebyscore(self._procs, "-inf", now - self._ttl)
        for raw_proc in dead:
            proc = raw_proc.decode() if isinstance(raw_proc, bytes) else raw_proc
            # One survivor cleans up a dead process.
            if not await self._r.set(f"{self._ns}:sweep:{proc}", self._proc, nx=True, ex=60):
                continue
            topics = await self._r.smembers(self._proc_topics(proc))
            for raw_topic in topics:
                topic = raw_topic.decode() if isinstance(raw_topic, bytes) else raw_topic
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
                    await publish({"k": "p", "t": topic, "joins": {}, "leaves": as_state(gone)})
            await self._r.delete(self._proc_topics(proc))
            await self._r.zrem(self._procs, proc)
            log.info("realtime: cleared presence of stopped process %s", proc)

    async def close(self) -> None:
        """Graceful stop: our own entries were removed with our sockets; drop our heartbeat."""
        try:
            await self._r.zrem(self._procs, self._proc)
            await self._r.delete(self._proc_topics(self._proc))
        except Exception:  # noqa: BLE001
            pass
