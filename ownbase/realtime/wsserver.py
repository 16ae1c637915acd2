"""The websocket protocol ``ownbase start`` serves with: uvicorn's implementation on websockets'
sans-I/O core, plus one ASGI extension realtime's fan-out uses.

Going through ASGI, every frame to every socket is a ``websocket.send`` dict, an ``await`` and a
framing by the websockets library. Server-to-client frames are not masked (and ownbase does not
negotiate compression), so one message has the same frame bytes on every socket: realtime frames
it once and writes those bytes to each socket's transport through
``scope["extensions"][EXTENSION]`` (this protocol object, seen as ``socket.FrameSink``).
Everything else (handshake, denial responses, reading, pings, the close handshake) stays
uvicorn's. Another ASGI server simply lacks the extension and realtime falls back to plain sends.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION = "ownbase.frames"
CLOSE_TIMEOUT = 10.0  # a peer that does not answer our close frame is cut off after this


class _Inbox:
    """The part of ``asyncio.Queue`` the protocol uses (one consumer: the app's ``receive``),
    without the three 600-byte deques a Queue allocates up front (10,000 idle sockets)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """``asyncio.Event`` for one or a few waiters, its waiter list made only when someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        fut = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        await fut


class RealtimeWebSocketProtocol(WebSocketsSansIOProtocol):
    on_drain: Callable[[], None] | None = None  # set by the app: the transport can take data again

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.fd = -1  # the socket's descriptor for direct writes; -1 under TLS (bytes must be encrypted)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self.fd = sock.fileno()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # the handshake's request and response are not needed any more (~2 KB a socket)
            self.request = self.response = None  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        if not self.conn.extensions:  # raw frames would bypass a negotiated extension
            self.scope["extensions"][EXTENSION] = self  # type: ignore[index]
        try:
            await super().run_asgi()
        finally:
            self.on_drain = None

    # --- socket.FrameSink ------------------------------------------------------------------
    def frames_open(self) -> bool:
        return (self.handshake_complete and self.initial_response is None and not self.close_sent
                and not self.disconnected and not self.transport.is_closing())

    def can_write(self) -> bool:
        """False while the transport's buffer is over its high-water mark (a slow reader)."""
        return self.writable._set  # type: ignore[attr-defined]  # our _Flag

    def direct_fd(self) -> int:
        """The descriptor ``outbox.Flusher`` may write to from a thread while the loop waits: only
        when the socket is open and its transport holds nothing buffered (order is kept). -1
        otherwise."""
        if (self.fd < 0 or self.close_sent or self.disconnected or self.transport.is_closing()
                or self.transport.get_write_buffer_size()):
            return -1
        return self.fd

    def write_frames(self, data: bytes) -> bool:
        """Write already framed bytes (one or more whole frames); False once the socket is closing.
        Called only after the handshake (the app holds no socket before it)."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def close_frames(self, code: int, reason: str = "") -> None:
        """Start the close handshake now, without waiting for a full buffer to drain (the ASGI
        close does wait, which a client that never reads would make forever)."""
        if not self.frames_open():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # abort, not close: close would wait for a buffer the peer may never read
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    # --- uvicorn hooks -----------------------------------------------------------------------
    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_drain is not None:
            self.on_drain()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.on_drain = None


UVICORN_WS = "ownbase.realtime.wsserver:RealtimeWebSocketProtocol"  # for uvicorn.run(ws=...)
