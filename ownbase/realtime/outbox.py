"""Write coalescing for realtime sockets.

A socket that receives several messages during one pass of the event loop (a burst of
broadcasts, a batch of changes, a reply followed by a system message) gets them in one transport
write: each message is appended to the socket's backlog and the socket is flushed once, at the
end of the pass, by a single ``call_soon`` shared by every socket.

Writing to a loopback or LAN socket costs a system call of several microseconds per socket, and
uvloop makes it holding the GIL, so one message to 10,000 sockets was 10,000 system calls in a
row on one core (most of a broadcast's latency). When a pass has many sockets to write, the
flusher writes their bytes with ``os.write`` (which releases the GIL) from a few threads at once
while the event loop waits for them: only sockets whose transport holds nothing buffered are
written that way (so the order of bytes on each socket is kept), and whatever a socket did not
take goes to its transport afterwards, as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger("ownbase.realtime")

# Below this many sockets in one pass, handing work to threads costs more than it saves.
PARALLEL_MIN_SOCKETS = 256


class Flushable(Protocol):
    def flush(self) -> None: ...
    def take_direct(self) -> tuple[int, bytes] | None: ...
    def write_rest(self, data: bytes) -> None: ...


def _write_direct(jobs: list[tuple[int, bytes]], start: int, stop: int) -> list[tuple[int, int]]:
    """Write jobs[start:stop] to their non-blocking sockets; return (index, bytes written) of
    each that did not take all of it (a full buffer, or an error the transport will meet again)."""
    short: list[tuple[int, int]] = []
    for i in range(start, stop):
        fd, data = jobs[i]
        try:
            n = os.write(fd, data)
        except OSError:
            n = 0
        if n < len(data):
            short.append((i, n))
    return short


class Flusher:
    __slots__ = ("_dirty", "_handle", "_threads", "_pool")

    def __init__(self, threads: int = 1) -> None:
        self._dirty: list[Flushable] = []
        self._handle: asyncio.Handle | None = None
        self._threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None  # made on first use

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def mark(self, target: Flushable) -> None:
        """Flush ``target`` at the end of this pass (the caller marks each target once)."""
        self._dirty.append(target)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._handle = None
        if self._threads > 1 and len(dirty) >= PARALLEL_MIN_SOCKETS:
            self._flush_parallel(dirty)
            return
        for target in dirty:
            try:
                target.flush()
            except Exception:  # noqa: BLE001 - one broken socket must not keep the others waiting
                log.exception("realtime: flushing a socket failed")

    def _flush_parallel(self, dirty: list[Flushable]) -> None:
        jobs: list[tuple[int, bytes]] = []
        owners: list[Flushable] = []
        for target in dirty:
            try:
                job = target.take_direct()  # or flushed through its transport right here
            except Exception:  # noqa: BLE001 - one broken socket must not keep the others waiting
                log.exception("realtime: flushing a socket failed")
                continue
            if job is not None:
                jobs.append(job)
                owners.append(target)
        if not jobs:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads - 1, thread_name_prefix="realtime-write")
        step = -(-len(jobs) // self._threads)
        # The loop thread takes the first share itself and then waits for the others: nothing
        # else may touch these sockets until every thread is done with them.
        futures = [self._pool.submit(_write_direct, jobs, lo, min(lo + step, len(jobs)))
                   for lo in range(step, len(jobs), step)]
        short = _write_direct(jobs, 0, min(step, len(jobs)))
        for future in futures:
            short += future.result()
        for i, n in short:
            try:
                owners[i].write_rest(jobs[i][1][n:])
            except Exception:  # noqa: BLE001 - as above
                log.exception("realtime: flushing a socket failed")
