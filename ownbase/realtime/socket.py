"""The websocket endpoint: one ``Connection`` per socket, a reader loop and a writer task.

Outbound frames go through a bounded queue drained by the writer; a client that does not read
fast enough overflows it and is disconnected (close 1013) instead of making the server buffer
without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from ownbase.realtime import channel, errors
from ownbase.realtime.serializer import V1, V2, Frame, FrameError, decode, encode
from ownbase.realtime.tokens import TokenProblem, identify

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.realtime.channel import ChannelSub
    from ownbase.realtime.hub import Hub

log = logging.getLogger("ownbase.realtime")

_STOP = object()


class Connection:
    def __init__(self, ctx: "Context", hub: "Hub", ws: WebSocket, vsn: str, token: str) -> None:
        self.ctx = ctx
        self.hub = hub
        self.ws = ws
        self.vsn = vsn
        self.token = token
        self.uid = uuid.uuid4().hex[:12]
        self.channels: dict[str, "ChannelSub"] = {}
        self.out: asyncio.Queue[Any] = asyncio.Queue()
        self.last_seen = time.monotonic()
        self.closed = False
        self._joins: tuple[float, float] = (float(ctx.settings.realtime_max_joins_per_second), time.monotonic())
        self._writer: asyncio.Task[None] | None = None

    # --- outbound ----------------------------------------------------------------------------
    def send_frame(self, frame: Frame) -> None:
        self.enqueue(encode(frame, self.vsn))

    def enqueue(self, data: str | bytes) -> None:
        if self.closed:
            return
        if self.out.qsize() >= self.ctx.settings.realtime_max_pending_messages:
            # Backpressure: drop the slow client rather than buffer without bound.
            self.closed = True
            asyncio.get_running_loop().create_task(self._close_socket(errors.CLOSE_TRY_AGAIN, "slow consumer"))
            return
        self.out.put_nowait(data)

    async def _write_loop(self) -> None:
        try:
            while True:
                data = await self.out.get()
                if data is _STOP:
                    return
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_text(data)
        except Exception:  # noqa: BLE001 - socket gone: the reader notices and cleans up
            self.closed = True

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
        if self.closed:
            return
        self.closed = True
        await self._close_socket(code, reason)

    async def _close_socket(self, code: int, reason: str) -> None:
        self.out.put_nowait(_STOP)
        try:
            await self.ws.close(code, reason)
        except Exception:  # noqa: BLE001 - already gone
            pass

    async def shutdown(self) -> None:
        """Graceful server stop: tell each channel, then close with 1001 (going away)."""
        for sub in list(self.channels.values()):
            sub.system("system", "ok", errors.SERVER_DISCONNECT)
        self.out.put_nowait(_STOP)
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), 2)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass
        self.closed = True
        try:
            await self.ws.close(errors.CLOSE_GOING_AWAY, "server shutting down")
        except Exception:  # noqa: BLE001
            pass
        await self._cleanup()  # presence leaves reach the other processes now, not after a TTL

    async def _cleanup(self) -> None:
        self.closed = True
        self.hub.connections.discard(self)
        for sub in list(self.channels.values()):
            await sub.remove()
        if self._writer is not None and not self._writer.done():
            self.out.put_nowait(_STOP)
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
