"""The per-process registry of joined channels and the handler of bus messages.

Topics are keyed ``pub:<topic>`` / ``priv:<topic>``: as on Supabase, a private channel and a
public channel of the same name are different channels.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ownbase.realtime import errors
from ownbase.realtime.bus import Bus, LocalBus, RedisBus
from ownbase.realtime.changes import Capture, Dispatcher
from ownbase.realtime.presence import LocalPresence, PresenceStore, RedisPresence
from ownbase.realtime.serializer import V1, V2, Frame, encode
from ownbase.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.realtime.channel import ChannelSub
    from ownbase.realtime.socket import Connection

log = logging.getLogger("ownbase.realtime")


def hub_key(topic: str, private: bool) -> str:
    return ("priv:" if private else "pub:") + topic


def topic_of(key: str) -> str:
    return key.split(":", 1)[1]


class Hub:
    def __init__(self, ctx: "Context") -> None:
        self.ctx = ctx
        self.proc = uuid.uuid4().hex[:12]
        self.topics: dict[str, set["ChannelSub"]] = {}
        self.pg: dict[tuple[str, str | None], set["ChannelSub"]] = {}
        self.connections: set["Connection"] = set()
        ns = "ownbase:realtime:" + _database_name(ctx.db.owner_url)
        self.bus: Bus
        self.presence: PresenceStore
        if ctx.redis is not None:
            self.bus = RedisBus(ctx.redis, ns + ":bus")
            self.presence = RedisPresence(ctx.redis, ns, self.proc, ctx.settings.realtime_process_ttl)
        else:
            self.bus = LocalBus()
            self.presence = LocalPresence()
        self.dispatcher = Dispatcher(ctx, self)
        if ctx.redis is not None:
            # Every process on this Redis is one delivery group: one leader reads the log.
            group = "redis:" + _redis_identity(ctx.settings.redis_url)
            wanted = lambda: True  # noqa: E731 - another process may hold the subscribers
        else:
            group = "local:" + self.proc
            wanted = self.has_pg_subscribers
        self.capture = Capture(ctx, self.bus.publish, group, wanted)
        self._sweeper: asyncio.Task[None] | None = None
        self.closing = False

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
        await self.dispatcher.stop()
        await self.bus.close()
        await self.presence.close()

    async def _sweep_loop(self) -> None:
        """Once a second: heartbeat timeouts and token expiry; every few seconds: presence of
        processes that stopped."""
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
                if now - last_presence >= max(1.0, self.ctx.settings.realtime_process_ttl / 3):
                    last_presence = now
                    await self.presence.sweep(self.bus.publish)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("realtime sweeper failed")

    # --- registry --------------------------------------------------------------------------
    def add(self, sub: "ChannelSub") -> None:
        self.topics.setdefault(sub.key, set()).add(sub)
        for b in sub.bindings:
            self.pg.setdefault((b.schema, b.table), set()).add(sub)

    def remove(self, sub: "ChannelSub") -> None:
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

    def pg_subscribers(self, schema: str, table: str) -> set["ChannelSub"]:
        out: set["ChannelSub"] = set()
        for key in ((schema, table), (schema, None), (schema, "*"), ("*", table), ("*", None), ("*", "*")):
            group = self.pg.get(key)
            if group:
                out |= group
        return out

    # --- bus -------------------------------------------------------------------------------
    async def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("k")
        if kind == "b":
            self._deliver_broadcast(message)
        elif kind == "p":
            self._deliver_presence(message)
        elif kind == "c":
            self.dispatcher.submit(message["changes"])

    def _deliver_broadcast(self, message: dict[str, Any]) -> None:
        subs = self.topics.get(message["t"])
        if not subs:
            return
        topic = topic_of(message["t"])
        frame = Frame(None, None, topic, "broadcast", message["payload"])
        encoded: dict[str, Any] = {}
        sender = message.get("from")
        for sub in list(subs):
            if sender is not None and sub.sender_id == sender and not sub.self_broadcast:
                continue
            vsn = sub.conn.vsn
            data = encoded.get(vsn)
            if data is None:
                data = encoded[vsn] = encode(frame, vsn)
            sub.conn.enqueue(data)

    def _deliver_presence(self, message: dict[str, Any]) -> None:
        subs = self.topics.get(message["t"])
        if not subs:
            return
        frame = Frame(None, None, topic_of(message["t"]), "presence_diff",
                      {"joins": message.get("joins") or {}, "leaves": message.get("leaves") or {}})
        encoded = {V1: None, V2: None}
        for sub in list(subs):
            if not sub.presence_enabled:
                continue
            vsn = sub.conn.vsn
            if encoded.get(vsn) is None:
                encoded[vsn] = encode(frame, vsn)
            sub.conn.enqueue(encoded[vsn])


def _database_name(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def _redis_identity(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
