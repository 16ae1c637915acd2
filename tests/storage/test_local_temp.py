"""The local backend's temp-file sweep: a file a writer holds is never removed, whatever its age;
a killed writer's file is, once older than the threshold."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator

import ownbase.storage.backends.local as local
from ownbase.storage.backends.local import LocalBackend

OLD = time.time() - 3 * 86400


def test_held_files_stay_dead_ones_go(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    release = asyncio.Event()

    async def go() -> None:
        await backend.start()

        async def chunks() -> AsyncIterator[bytes]:
            yield b"x" * 2_000_000
            await release.wait()
            yield b"y"

        writing = asyncio.create_task(backend.write("b", "in/flight", chunks(), "application/octet-stream"))
        while not any(p.stat().st_size for p in backend.tmp.iterdir()):
            await asyncio.sleep(0.01)
        (held,) = list(backend.tmp.iterdir())
        os.utime(held, (OLD, OLD))  # a long, slow upload: old, but still being written
        # A file a killed process left: written by another process that exits without cleaning up.
        subprocess.run([sys.executable, "-c", "import sys, fcntl; f = open(sys.argv[1], 'wb'); "
                        "fcntl.flock(f, fcntl.LOCK_EX); f.write(b'dead'); f.flush(); import os; os._exit(0)",
                        str(backend.tmp / "dead")], check=True)
        os.utime(backend.tmp / "dead", (OLD, OLD))
        (backend.tmp / "young").write_bytes(b"young")

        assert await backend.sweep_leftovers(86400) == 1
        assert sorted(p.name for p in backend.tmp.iterdir()) == sorted([held.name, "young"])
        release.set()
        await writing
        assert (tmp_path / "b" / "in" / "flight").stat().st_size == 2_000_001
        assert await backend.sweep_leftovers(0) == 1  # "young", now past a zero threshold
        assert list(backend.tmp.iterdir()) == []

    asyncio.run(go())


def test_write_keeps_every_byte_in_order_whatever_the_chunking(tmp_path: Path) -> None:
    # writev(2) takes at most IOV_MAX buffers a call: more small chunks than that in one slice,
    # empty chunks and a slice boundary inside a chunk must all land in order

    backend = LocalBackend(tmp_path / "root")
    sizes = [1, 0, 7] * (local.IOV_MAX // 2 + 5) + [local.WRITE_SLICE + 3, 5, 0, 2 * local.WRITE_SLICE]
    chunks = [os.urandom(n) for n in sizes]

    async def body() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    async def go() -> None:
        await backend.start()
        await backend.write("b", "k.bin", body(), "application/octet-stream")

    asyncio.run(go())
    assert (tmp_path / "root" / "b" / "k.bin").read_bytes() == b"".join(chunks)
    assert list((tmp_path / "root" / ".tmp").iterdir()) == []
