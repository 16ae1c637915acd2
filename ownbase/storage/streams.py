"""Stream helpers: bounded read-ahead so producing and consuming overlap in constant memory."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

_DONE = object()


async def readahead(source: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """Pull ``source`` in a task of its own, keeping at most ~``max_bytes`` queued (plus one chunk).

    The request body keeps arriving while the previous slice is hashed or written (uvicorn
    pauses the socket once 64 KiB are unread), and a download reads the next slice from the
    backend while the current one is sent.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = asyncio.Event()
    room.set()
    queued = 0

    async def pump() -> None:
        nonlocal queued
        try:
            async for chunk in source:
                queue.put_nowait(chunk)
                queued += len(chunk)
                if queued >= max_bytes:
                    room.clear()
                    await room.wait()
            queue.put_nowait(_DONE)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            queue.put_nowait(exc)

    task = asyncio.create_task(pump())
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            queued -= len(item)
            if queued < max_bytes:
                room.set()
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
