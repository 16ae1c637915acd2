"""The per-process registry of joined channels and the handler of bus messages.

The hub owns the bus, the presence store, the change capture and the dispatcher, and wires them
together with plain callables; it knows channels and sockets only through the small protocols
below (so ``hub`` imports neither ``channel`` nor ``socket``).

With Redis, the hub can be *degraded* (``Hub.degraded``): Redis is unreachable, so broadcasts,
presence and changes reach only this process's sockets. Each process then reads the change log
for its own subscribers (a fallback capture group of its own), and everything returns to shared
mode by itself when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ownbase.realtime import errors
from ownbase.realtime.bus import Broadcast, Bus, Changes, LocalBus, Message, PresenceDiff, RedisBus
from ownbase.realtime.capture import Capture
from ownbase.realtime.dispatch import Dispatcher, Subscriber
from ownbase.realtime.outbox import Flusher
from ownbase.realtime.presence import LocalPresence, PresenceStore, RedisPresence
from ownbase.realtime.serializer import Frame, Outgoing, outgoing
from ownbase.realtime.topics import topic_of
from ownbase.realtime.tokens import Identity
from ownbase.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ownbase.context import Context

log = logging.getLogger("ownbase.realtime")


class Channel(Subscriber, Protocol):
    """What the hub needs of a joined channel (``channel.ChannelSub``)."""

    key: str
    ident: Identity
    sender_id: str
    self_broadcast: bool
    presence_enabled: bool

    async def shutdown(self, message: str) -> None: ...


class Client(Protocol):
    """What the hub needs of a socket (``socket.Connection``)."""

    last_seen: float
    channels: dict[str, Any]

    async def close(self, code: int, reason: str = "") -> None: ...
    async def shutdown(self) -> None: ...


class Hub:
    def __init__(self, ctx: "Context") -> None:
        self.ctx = ctx
        self.proc = uuid.uuid4().hex[:12]
        self.topics: dict[str, set[Channel]] = {}
        self.pg: dict[tuple[str, str | None], set[Channel]] = {}
        self.connections: set[Client] = set()
        # one write per socket per loop pass, large fan-outs written from several threads (``outbox``)
        self.flusher = Flusher(ctx.settings.realtime_write_threads or min(4, os.cpu_count() or 1))
        ns = "ownbase:realtime:" + _database_name(ctx.db.owner_url)
        self.bus: Bus
        self.presence: PresenceStore
        self.dispatcher = Dispatcher(ctx, self.pg_subscribers, self.has_pg_subscribers)
        self._fallback: Capture | None = None  # own capture group while Redis is unreachable
        self._stopping: set[asyncio.Task[None]] = set()
        if ctx.redis is not None:
            self.bus = RedisBus(ctx.redis, ns + ":bus", on_change=self._redis_changed)
            self.presence = RedisPresence(ctx.redis, ns, self.proc, ctx.settings.realtime_process_ttl)
            # Every process on this Redis is one delivery group: one leader reads the log (and
            # another process may hold the subscribers, so the leader reads whatever happens).
            group = "redis:" + _redis_identity(ctx.settings.redis_url)
            self.capture = Capture(ctx, self._publish_changes, group, lambda: True)
        else:
            self.bus = LocalBus()
            self.presence = LocalPresence()
            self.capture = Capture(ctx, self.bus.publish, "local:" + self.proc, self.has_pg_subscribers)
        self._sweeper: asyncio.Task[None] | None = None
        self.closing = False

    # --- status ------------------------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        """True while Redis is configured but unreachable: fan-out is in-process only."""
        return self.bus.degraded or self.presence.degraded

    def status(self) -> dict[str, Any]:
        """A small summary for /ready: ``{"degraded": bool, "reason": str | None}``."""
        if not self.degraded:
            return {"degraded": False, "reason": None}
        return {"degraded": True, "reason": self.bus.reason or "presence store unreachable"}

    def _redis_changed(self, degraded: bool) -> None:
        if degraded and self._fallback is None and not self.closing:
            self._fallback = Capture(self.ctx, self._deliver_changes, "local:" + self.proc,
                                     self.has_pg_subscribers)
            self._fallback.start()
        elif not degraded and self._fallback is not None:
            task = asyncio.get_running_loop().create_task(self._fallback.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
            self._fallback = None

    async def _publish_changes(self, message: Message) -> None:
        if self.bus.degraded:
            return  # every process reads the log for itself until Redis is back
        await self.bus.publish(message)

    async def _deliver_changes(self, message: Message) -> None:
        if isinstance(message, Changes):
            self.dispatcher.submit(message.changes)

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self.bus.start(self.on_message)
        self.dispatcher.start()
        self.capture.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="realtime-sweeper")

    async def stop(self) -> None:
        self.closing = True
        for conn in list(self.connections):
            await conn.shutdown()
        await cancel_and_wait(self._sweeper)
        await self.capture.stop()
        if self._fallback is not None:
            await self._fallback.stop()
        for task in list(self._stopping):
            await task
        await self.dispatcher.stop()
        await self.bus.close()
        await self.presence.close()
        self.flusher.close()

    async def _sweep_loop(self) -> None:
        """Once a second: heartbeat timeouts and token expiry; every few seconds (every second
        while degraded): the presence store's heartbeat, re-publication and dead processes."""
        last_presence = 0.0
        while True:
            await asyncio.sleep(1.0)
            try:
                now = time.time()
                timeout = self.ctx.settings.realtime_heartbeat_timeout
                mono = time.monotonic()
                for conn in list(self.connections):
                    if mono - conn.last_seen > timeout:
                        await conn.close(errors.CLOSE_NORMAL, "heartbeat timeout")
                        continue
                    for sub in list(conn.channels.values()):
                        if sub.ident.exp is not None and sub.ident.exp <= now:
                            await sub.shutdown(errors.token_expired_ago(int(now - sub.ident.exp)))
                every = max(1.0, self.ctx.settings.realtime_process_ttl / 3)
                if self.presence.degraded or now - last_presence >= every:
                    last_presence = now
                    await self.presence.sweep(self.bus.publish)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("realtime sweeper failed")

    # --- registry --------------------------------------------------------------------------
    def add(self, sub: Channel) -> None:
        self.topics.setdefault(sub.key, set()).add(sub)
        for b in sub.bindings:
            self.pg.setdefault((b.schema, b.table), set()).add(sub)

    def remove(self, sub: Channel) -> None:
        subs = self.topics.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                self.topics.pop(sub.key, None)
        for b in sub.bindings:
            group = self.pg.get((b.schema, b.table))
            if group is not None:
                group.discard(sub)
                if not group:
                    self.pg.pop((b.schema, b.table), None)

    def has_pg_subscribers(self) -> bool:
        return bool(self.pg)

    def pg_subscribers(self, schema: str, table: str) -> set[Subscriber]:
        out: set[Subscriber] = set()
        for key in ((schema, table), (schema, None), (schema, "*"), ("*", table), ("*", None), ("*", "*")):
            group = self.pg.get(key)
            if group:
                out |= group
        return out

    # --- bus -------------------------------------------------------------------------------
    async def on_message(self, message: Message) -> None:
        if isinstance(message, Broadcast):
            self._deliver_broadcast(message)
        elif isinstance(message, PresenceDiff):
            self._deliver_presence(message)
        elif isinstance(message, Changes):
            self.dispatcher.submit(message.changes)

    def _deliver_broadcast(self, message: Broadcast) -> None:
        subs = self.topics.get(message.topic)
        if not subs:
            return
        frame = Frame(None, None, topic_of(message.topic), "broadcast", message.payload)
        # Encoded (and framed) once per serializer version, the same object for every socket.
        encoded: dict[str, Outgoing] = {}
        sender = message.sender
        for sub in subs:  # enqueue never changes the registry, so no copy of a 10,000-member set
            if sender is not None and sub.sender_id == sender and not sub.self_broadcast:
                continue
            conn = sub.conn
            out = encoded.get(conn.vsn)
            if out is None:
                out = encoded[conn.vsn] = outgoing(frame, conn.vsn)
            conn.enqueue(out)

    def _deliver_presence(self, message: PresenceDiff) -> None:
        subs = self.topics.get(message.topic)
        if not subs:
            return
        frame = Frame(None, None, topic_of(message.topic), "presence_diff",
                      {"joins": message.joins, "leaves": message.leaves})
        encoded: dict[str, Outgoing] = {}
        for sub in subs:
            if not sub.presence_enabled:
                continue
            conn = sub.conn
            out = encoded.get(conn.vsn)
            if out is None:
                out = encoded[conn.vsn] = outgoing(frame, conn.vsn)
            conn.enqueue(out)


def _database_name(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def _redis_identity(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
