"""The fan-out bus between ownbase processes.

Everything that must reach sockets on every process travels as one bus message: broadcasts,
presence diffs and batches of captured database changes. Each process hands every message it
receives to its local hub, which delivers to the sockets it holds; so a message published once is
delivered once per subscriber, whichever process holds the subscriber.

* ``LocalBus``: one process, no Redis; publish calls the handler directly.
* ``RedisBus``: Redis pub/sub on one channel per database (``redis.asyncio``; ``rediss://`` with
  TLS and AUTH works as the URL says). A process also receives its own messages back, so every
  process sees the same order.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any, Awaitable, Callable, Protocol

from ownbase.realtime.serializer import dumpb, loads
from ownbase.tasks import cancel_and_wait

log = logging.getLogger("ownbase.realtime")

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Bus(Protocol):
    async def start(self, handler: Handler) -> None: ...
    async def publish(self, message: dict[str, Any]) -> None: ...
    async def close(self) -> None: ...


class LocalBus:
    def __init__(self) -> None:
        self._handler: Handler | None = None

    async def start(self, handler: Handler) -> None:
        self._handler = handler

    async def publish(self, message: dict[str, Any]) -> None:
        if self._handler is not None:
            await self._handler(message)

    async def close(self) -> None:
        self._handler = None


def encode_message(message: dict[str, Any]) -> bytes:
    payload = message.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("payload"), (bytes, bytearray)):
        message = {**message, "payload": {**payload, "payload": None,
                                           "$b64": base64.b64encode(payload["payload"]).decode()}}
    return dumpb(message)


def decode_message(raw: bytes | str) -> dict[str, Any]:
    message = loads(raw)
    payload = message.get("payload")
    if isinstance(payload, dict) and "$b64" in payload:
        payload["payload"] = base64.b64decode(payload.pop("$b64"))
    return message


class RedisBus:
    def __init__(self, client: Any, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, handler: Handler) -> None:
        self._task = asyncio.create_task(self._run(handler), name="realtime-redis-bus")
        # Subscribed before the process accepts sockets: nothing published later is missed.
        await asyncio.wait_for(self._ready.wait(), 30)

    async def _run(self, handler: Handler) -> None:
        while True:
            try:
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self._channel)
                self._ready.set()
                while True:
                    msg = await self._pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        await handler(decode_message(msg["data"]))
                    except Exception:  # noqa: BLE001 - one bad message must not stop the bus
                        log.exception("realtime bus handler failed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect after Redis errors
                log.warning("realtime redis bus error, reconnecting: %s", exc)
                await asyncio.sleep(1)
            finally:
                if self._pubsub is not None:
                    try:
                        await self._pubsub.aclose()
                    except Exception:  # noqa: BLE001
                        pass
                    self._pubsub = None

    async def publish(self, message: dict[str, Any]) -> None:
        await self._client.publish(self._channel, encode_message(message))

    async def close(self) -> None:
        await cancel_and_wait(self._task)
