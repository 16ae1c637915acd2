"""Write coalescing for realtime sockets.

A socket that receives several messages during one pass of the event loop (a burst of
broadcasts, a batch of changes, a reply followed by a system message) gets them in one transport
write: each message is appended to the socket's backlog and the socket is flushed once, at the
end of the pass, by a single ``call_soon`` shared by every socket.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("ownbase.realtime")


class Flushable(Protocol):
    def flush(self) -> None: ...


class Flusher:
    __slots__ = ("_dirty", "_handle")

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        self._handle: asyncio.Handle | None = None

    def mark(self, target: Flushable) -> None:
        """Flush ``target`` at the end of this pass (the caller marks each target once)."""
        self._dirty.append(target)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._handle = None
        for target in dirty:
            try:
                target.flush()
            except Exception:  # noqa: BLE001 - one broken socket must not keep the others waiting
                log.exception("realtime: flushing a socket failed")
