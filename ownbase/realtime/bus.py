"""The fan-out bus between ownbase processes, and the messages it carries.

Everything that must reach sockets on every process travels as one bus message: broadcasts,
presence diffs and batches of captured database changes. Each process hands every message it
receives to its local hub, which delivers to the sockets it holds; so a message published once is
delivered once per subscriber, whichever process holds the subscriber.

* ``LocalBus``: one process, no Redis; publish calls the handler directly.
* ``RedisBus``: Redis pub/sub on one channel per database (``redis.asyncio``; ``rediss://`` with
  TLS and AUTH works as the URL says). A process also receives its own messages back, so every
  process sees the same order. When Redis cannot be reached the bus is *degraded*: a message is
  delivered to this process's sockets directly (logged once, counted), and shared fan-out
  resumes by itself once the subscription is back.

The messages are defined here, once, with their wire form (compact JSON with one-letter keys,
kept as it was so processes of two versions can share one Redis during a rolling upgrade).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Union

from ownbase.realtime.serializer import dumpb, loads
from ownbase.tasks import cancel_and_wait

log = logging.getLogger("ownbase.realtime")


# --- messages --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Broadcast:
    topic: str  # hub key (``pub:<topic>`` / ``priv:<topic>``)
    payload: dict[str, Any]  # {"type": "broadcast", "event", "payload", "meta"?}
    sender: str | None = None  # the sending channel, so `self: false` can skip it


@dataclass(frozen=True, slots=True)
class PresenceDiff:
    topic: str  # hub key
    joins: dict[str, Any]
    leaves: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One captured row change, as the capture leader read it from the change log."""

    id: int
    oid: int
    schema: str
    table: str
    op: str  # INSERT | UPDATE | DELETE
    record: dict[str, Any] | None
    old: dict[str, Any] | None
    ts: str  # commit timestamp, already formatted for the payload

    @property
    def row(self) -> dict[str, Any] | None:
        """The row filters and RLS are judged on: the old row of a DELETE, else the new one."""
        return self.old if self.op == "DELETE" else self.record


@dataclass(frozen=True, slots=True)
class Changes:
    changes: list[Change]


Message = Union[Broadcast, PresenceDiff, Changes]
Handler = Callable[[Message], Awaitable[None]]
Publish = Callable[[Message], Awaitable[None]]


def encode_message(message: Message, msg_id: str | None = None) -> bytes:
    if isinstance(message, Broadcast):
        payload = message.payload
        if isinstance(payload.get("payload"), (bytes, bytearray)):
            payload = {**payload, "payload": None, "$b64": base64.b64encode(payload["payload"]).decode()}
        wire: dict[str, Any] = {"k": "b", "t": message.topic, "payload": payload, "from": message.sender}
    elif isinstance(message, PresenceDiff):
        wire = {"k": "p", "t": message.topic, "joins": message.joins, "leaves": message.leaves}
    else:
        wire = {"k": "c", "changes": [
            {"id": c.id, "oid": c.oid, "schema": c.schema, "table": c.table, "op": c.op,
             "record": c.record, "old": c.old, "ts": c.ts} for c in message.changes]}
    if msg_id is not None:
        wire["i"] = msg_id
    return dumpb(wire)


def decode_message(raw: bytes | str) -> tuple[Message | None, str | None]:
    """The message and its id (None for an unknown kind, which a newer process may send)."""
    wire = loads(raw)
    kind = wire.get("k")
    message: Message | None = None
    if kind == "b":
        payload = wire.get("payload")
        if isinstance(payload, dict) and "$b64" in payload:
            payload["payload"] = base64.b64decode(payload.pop("$b64"))
        message = Broadcast(wire["t"], payload, wire.get("from"))
    elif kind == "p":
        message = PresenceDiff(wire["t"], wire.get("joins") or {}, wire.get("leaves") or {})
    elif kind == "c":
        message = Changes([Change(c["id"], c["oid"], c["schema"], c["table"], c["op"], c.get("record"),
                                  c.get("old"), c["ts"]) for c in wire["changes"]])
    return message, wire.get("i")


# --- buses -----------------------------------------------------------------------------------
class Bus(Protocol):
    @property
    def degraded(self) -> bool: ...  # Redis configured but unreachable: delivery is in-process
    reason: str | None  # why, while degraded

    async def start(self, handler: Handler) -> None: ...
    async def publish(self, message: Message) -> None: ...
    async def close(self) -> None: ...


class LocalBus:
    degraded = False
    reason = None

    def __init__(self) -> None:
        self._handler: Handler | None = None

    async def start(self, handler: Handler) -> None:
        self._handler = handler

    async def publish(self, message: Message) -> None:
        if self._handler is not None:
            await self._handler(message)

    async def close(self) -> None:
        self._handler = None


RECONNECT_SECONDS = 1.0
REDIS_TIMEOUT = 2.0  # a Redis that stops answering (not only refusing) must not hold a sender
_RECENT_LOCAL = 10_000  # ids of messages delivered locally, so a late echo from Redis is dropped


class RedisBus:
    def __init__(self, client: Any, channel: str,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self._client = client
        self._channel = channel
        self._on_change = on_change  # called with the new `degraded` value on each transition
        self._handler: Handler | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._origin = uuid.uuid4().hex[:12]
        self._seq = itertools.count()
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._subscribed = False  # not yet: `start` waits for the first attempt
        self._publish_ok = True
        self._reported = False  # the state last logged and reported through `on_change`
        self.local_deliveries = 0  # messages delivered in this process only while degraded
        self.reason: str | None = None

    @property
    def degraded(self) -> bool:
        return not (self._subscribed and self._publish_ok)

    def _set(self, *, subscribed: bool | None = None, publish_ok: bool | None = None,
             reason: str | None = None) -> None:
        if subscribed is not None:
            self._subscribed = subscribed
        if publish_ok is not None:
            self._publish_ok = publish_ok
        after = self.degraded
        if after and reason:
            self.reason = reason
        if after == self._reported:
            return
        self._reported = after
        if after:
            log.warning("realtime: Redis unreachable (%s); broadcasts, presence and changes are "
                        "delivered within this process only until it is back (degraded)", self.reason)
        else:
            log.warning("realtime: Redis reachable again; shared fan-out resumed")
            self.reason = None
        if self._on_change is not None:
            self._on_change(after)

    async def start(self, handler: Handler) -> None:
        self._handler = handler
        self._task = asyncio.create_task(self._run(), name="realtime-redis-bus")
        # Subscribed before the process accepts sockets, so nothing published later is missed;
        # if Redis is down the first attempt's failure ends the wait and the bus starts degraded.
        await asyncio.wait_for(self._ready.wait(), 30)

    async def _run(self) -> None:
        pubsub: Any = None
        while True:
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self._channel)
                self._set(subscribed=True)
                self._ready.set()
                while True:
                    msg = await pubsub.get_message(timeout=RECONNECT_SECONDS)
                    if not self._publish_ok:
                        # a publish failed: is Redis fine again?
                        await asyncio.wait_for(self._client.ping(), REDIS_TIMEOUT)
                        self._set(publish_ok=True)
                    if msg is None or msg.get("type") != "message":
                        continue
                    await self._receive(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep retrying until Redis is back
                self._set(subscribed=False, reason=str(exc) or type(exc).__name__)
                self._ready.set()
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # noqa: BLE001 - the connection is already gone
                        pass
                    pubsub = None

    async def _receive(self, raw: bytes) -> None:
        try:
            message, msg_id = decode_message(raw)
            if msg_id is not None and msg_id in self._recent:
                del self._recent[msg_id]  # already delivered here when its publish failed
                return
            if message is None or self._handler is None:
                return  # a kind this version does not know
            await self._handler(message)
        except Exception:  # noqa: BLE001 - one bad message must not stop the bus
            log.exception("realtime bus handler failed")

    def _remember(self, msg_id: str) -> None:
        self._recent[msg_id] = None
        while len(self._recent) > _RECENT_LOCAL:
            self._recent.popitem(last=False)

    async def publish(self, message: Message) -> None:
        if self._subscribed:
            msg_id = f"{self._origin}:{next(self._seq)}"
            try:
                await asyncio.wait_for(self._client.publish(self._channel, encode_message(message, msg_id)),
                                       REDIS_TIMEOUT)
                self._set(publish_ok=True)
                return  # it comes back through the subscription
            except Exception as exc:  # noqa: BLE001 - Redis down: degrade instead of failing the caller
                self._set(publish_ok=False, reason=str(exc) or type(exc).__name__)
                # It may still have reached Redis: if its echo arrives, it is dropped.
                self._remember(msg_id)
        # Until the subscription is back nothing comes back through Redis: deliver here.
        self.local_deliveries += 1
        if self._handler is not None:
            await self._handler(message)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
