"""The websocket endpoint: one ``Connection`` per socket, read by the server's task for it.

Outbound messages go to a bounded per-socket backlog that is written out once per pass of the
event loop (``outbox.Flusher``): several messages for one socket make one write. Under
``ownbase start`` the backlog is written as ready WebSocket frames straight to the socket's
transport (``wsserver``): a message fanned out to many sockets is framed once and the same bytes
go to each, and no task per socket is needed for writing. Elsewhere (another ASGI server) a small
writer task sends the backlog through ASGI. Either way a client that does not read fast enough
lets its backlog reach ``OWNBASE_REALTIME_MAX_PENDING_MESSAGES`` and is disconnected (close 1013)
instead of making the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from ownbase.realtime import channel, errors
from ownbase.realtime.serializer import V1, V2, Frame, FrameError, Outgoing, decode, outgoing
from ownbase.realtime.tokens import TokenProblem, identify
from ownbase.realtime.wsserver import EXTENSION

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.realtime.channel import ChannelSub
    from ownbase.realtime.hub import Hub

log = logging.getLogger("ownbase.realtime")


class FrameSink(Protocol):
    """The server side of one websocket that takes ready frames (``wsserver``)."""

    on_drain: Any

    def can_write(self) -> bool: ...
    def direct_fd(self) -> int: ...
    def write_frames(self, data: bytes) -> bool: ...
    def close_frames(self, code: int, reason: str = "") -> None: ...


class Connection:
    __slots__ = ("ctx", "hub", "ws", "vsn", "token", "uid", "channels", "last_seen", "closed",
                 "_joins", "_backlog", "_marked", "_max_pending", "_sink", "_writer", "_wake")

    def __init__(self, ctx: "Context", hub: "Hub", ws: WebSocket, vsn: str, token: str) -> None:
        self.ctx = ctx
        self.hub = hub
        self.ws = ws
        self.vsn = vsn
        self.token = token
        self.uid = uuid.uuid4().hex[:12]
        self.channels: dict[str, "ChannelSub"] = {}
        self.last_seen = time.monotonic()
        self.closed = False
        self._joins: tuple[float, float] = (float(ctx.settings.realtime_max_joins_per_second), time.monotonic())
        self._backlog: list[Outgoing] = []  # messages not yet handed to the transport
        self._marked = False  # a flush is scheduled
        self._max_pending = ctx.settings.realtime_max_pending_messages
        self._sink: FrameSink | None = (ws.scope.get("extensions") or {}).get(EXTENSION)
        self._writer: asyncio.Task[None] | None = None  # only without a sink
        self._wake: asyncio.Event | None = None

    # --- outbound ----------------------------------------------------------------------------
    def send_frame(self, frame: Frame) -> None:
        self.enqueue(outgoing(frame, self.vsn))

    def enqueue(self, message: Outgoing) -> None:
        if self.closed:
            return
        backlog = self._backlog
        if len(backlog) >= self._max_pending:
            self._slow_consumer()
            return
        backlog.append(message)
        if self._sink is None:
            self._wake.set()  # type: ignore[union-attr]
        elif not self._marked:
            self._marked = True
            self.hub.flusher.mark(self)

    def flush(self) -> None:
        """Hand the backlog to the transport as one write (called once per loop pass)."""
        self._marked = False
        sink = self._sink
        # Over the transport's high-water mark the backlog waits (bounded, see `enqueue`) and
        # `_drained` schedules the next flush.
        if self.closed or not self._backlog or sink is None or not sink.can_write():
            return
        self._write_backlog(sink)

    def take_direct(self) -> tuple[int, bytes] | None:
        """For ``outbox.Flusher``'s threaded writes: the socket's file descriptor and the backlog's
        bytes (the backlog is then empty) when they may be written straight to the socket, else
        flush through the transport now and return None."""
        self._marked = False
        sink = self._sink
        if self.closed or not self._backlog or sink is None or not sink.can_write():
            return None
        fd = sink.direct_fd()
        if fd < 0:
            self._write_backlog(sink)
            return None
        backlog = self._backlog
        data = backlog[0].wire if len(backlog) == 1 else b"".join([m.wire for m in backlog])
        backlog.clear()
        return fd, data

    def write_rest(self, data: bytes) -> None:
        """What the socket did not take of a direct write goes to its transport (in order: the
        transport held nothing before it)."""
        if self._sink is not None and not self._sink.write_frames(data):
            self.closed = True

    def _write_backlog(self, sink: FrameSink) -> None:
        backlog = self._backlog
        data = backlog[0].wire if len(backlog) == 1 else b"".join([m.wire for m in backlog])
        backlog.clear()
        if not sink.write_frames(data):
            self.closed = True  # closing already: the reader sees the disconnect and cleans up

    def _drained(self) -> None:
        if self._backlog and not self._marked and not self.closed:
            self._marked = True
            self.hub.flusher.mark(self)

    def _slow_consumer(self) -> None:
        # Backpressure: drop the slow client rather than buffer without bound.
        self.closed = True
        self._backlog.clear()
        if self._sink is not None:
            self._sink.close_frames(errors.CLOSE_TRY_AGAIN, "slow consumer")
        else:
            asyncio.get_running_loop().create_task(self._close_asgi(errors.CLOSE_TRY_AGAIN, "slow consumer"))

    async def _write_loop(self) -> None:
        """Without a sink: send the backlog through ASGI, one message at a time."""
        assert self._wake is not None
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while self._backlog and not self.closed:
                    data = self._backlog.pop(0).data
                    if isinstance(data, bytes):
                        await self.ws.send_bytes(data)
                    else:
                        await self.ws.send_text(data)
        except Exception:  # noqa: BLE001 - socket gone: the reader notices and cleans up
            self.closed = True

    async def _close_asgi(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, reason)
        except Exception:  # noqa: BLE001 - already gone
            pass

    # --- limits ------------------------------------------------------------------------------
    def allow_join(self) -> bool:
        rate = float(self.ctx.settings.realtime_max_joins_per_second)
        tokens, stamp = self._joins
        now = time.monotonic()
        tokens = min(rate, tokens + (now - stamp) * rate)
        if tokens < 1:
            self._joins = (tokens, now)
            return False
        self._joins = (tokens - 1, now)
        return True

    # --- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        self.hub.connections.add(self)
        if self._sink is not None:
            self._sink.on_drain = self._drained
        else:
            self._wake = asyncio.Event()
            self._writer = asyncio.create_task(self._write_loop())
        max_frame = self.ctx.settings.realtime_max_message_bytes + 64 * 1024
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes")
                if data is None:
                    continue
                self.last_seen = time.monotonic()
                size = len(data)
                if size > max_frame:
                    await self.close(errors.CLOSE_POLICY, "message too big")
                    break
                try:
                    frame = decode(data, self.vsn)
                except FrameError:
                    continue  # Phoenix ignores undecodable frames
                await self.handle(frame, size)
                # an idle socket should not keep its last frame alive while it waits
                message = data = frame = None  # type: ignore[assignment]
        except WebSocketDisconnect:
            pass
        except Exception:  # noqa: BLE001
            log.exception("realtime socket failed")
        finally:
            await self._cleanup()

    async def handle(self, frame: Frame, size: int) -> None:
        if frame.topic == "phoenix":
            if frame.event == "heartbeat":
                self.send_frame(Frame(None, frame.ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}))
            return
        if frame.event == "phx_join":
            await channel.join(self, frame)
            return
        sub = self.channels.get(frame.topic)
        if sub is None:
            if frame.ref is not None and frame.event != "phx_leave":
                self.send_frame(Frame(frame.join_ref, frame.ref, frame.topic, "phx_reply",
                                      {"status": "error", "response": {"reason": errors.UNMATCHED_TOPIC}}))
            elif frame.event == "phx_leave":
                self.send_frame(Frame(frame.join_ref, frame.ref, frame.topic, "phx_reply",
                                      {"status": "ok", "response": {}}))
            return
        try:
            await channel.push(self, sub, frame, size)
        except Exception:  # noqa: BLE001 - a failing channel is closed alone, as Phoenix does
            log.exception("realtime channel %s failed", frame.topic)
            self.send_frame(Frame(sub.join_ref, frame.ref, frame.topic, "phx_error", {}))
            await sub.remove()

    async def close(self, code: int, reason: str = "") -> None:
        """Close after what is already queued (a reply before the close frame stays before it)."""
        if self.closed:
            return
        await self._finish(code, reason, 1)

    async def _finish(self, code: int, reason: str, wait: float) -> None:
        sink = self._sink
        if sink is not None:
            if self._backlog:
                self._write_backlog(sink)  # even over the high-water mark: it is bounded
            self.closed = True
            sink.close_frames(code, reason)
            return
        if self._writer is not None and not self._writer.done():
            self._wake.set()  # type: ignore[union-attr]
            deadline = time.monotonic() + wait
            while self._backlog and not self._writer.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        self.closed = True
        await self._close_asgi(code, reason)

    async def shutdown(self) -> None:
        """Graceful server stop: tell each channel, then close with 1001 (going away)."""
        for sub in list(self.channels.values()):
            sub.system("system", "ok", errors.SERVER_DISCONNECT)
        if not self.closed:
            await self._finish(errors.CLOSE_GOING_AWAY, "server shutting down", 2)
        await self._cleanup()  # presence leaves reach the other processes now, not after a TTL

    async def _cleanup(self) -> None:
        self.closed = True
        self._backlog.clear()
        self.hub.connections.discard(self)
        if self._sink is not None:
            self._sink.on_drain = None
        for sub in list(self.channels.values()):
            await sub.remove()
        if self._writer is not None and not self._writer.done():
            self._wake.set()  # type: ignore[union-attr]
            try:
                await asyncio.wait_for(self._writer, 1)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                self._writer.cancel()


async def _deny(ws: WebSocket, body: dict[str, Any], status: int) -> None:
    """Refuse the handshake with an HTTP JSON body (Supabase's shape) where the server supports
    it, else with a bare close (the client then sees HTTP 403)."""
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    except RuntimeError:
        await ws.close(errors.CLOSE_POLICY)


async def websocket_endpoint(ws: WebSocket) -> None:
    ctx: "Context" | None = getattr(ws.app.state, "ctx", None)
    if ctx is None or ctx.shutting_down or "realtime" not in ctx.state:
        await _deny(ws, {"error": "Realtime is restarting"}, 503)
        return
    hub: "Hub" = ctx.state["realtime"]
    vsn = ws.query_params.get("vsn") or V1
    if vsn not in (V1, V2):
        await _deny(ws, {"error": f"Unsupported serializer version: {vsn}"}, 400)
        return
    token = ws.query_params.get("apikey") or ws.headers.get("x-api-key") or ws.headers.get("apikey") or ""
    if not token:
        auth = ws.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
    try:
        identify(ctx.keys, token)
    except TokenProblem as exc:
        message = errors.TOKEN_EXPIRED if exc.message.startswith(errors.TOKEN_EXPIRED) else exc.message
        await _deny(ws, {"error": message}, 401)
        return
    await ws.accept()
    conn = Connection(ctx, hub, ws, vsn, token)
    await conn.run()
