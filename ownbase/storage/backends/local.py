"""Local-disk backend: ``<root>/<bucket>/<key>``, written to a temp file then renamed into place.

File I/O runs in worker threads in large slices so the event loop never blocks and memory stays
bounded by one slice.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from ownbase.storage.backends.base import BlobNotFound

WRITE_SLICE = 1024 * 1024
READ_SLICE = 2 * 1024 * 1024


FLUSH_EVERY = 32 * 1024 * 1024
IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


class PathEscape(ValueError):
    pass


class _Flusher:
    """Background fdatasync of a file being written, at most one at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.unflushed = 0
        self.task: asyncio.Future[None] | None = None

    def wrote(self, n: int) -> None:
        self.unflushed += n
        if self.unflushed >= FLUSH_EVERY and (self.task is None or self.task.done()):
            if self.task is not None and self.task.exception() is not None:
                raise self.task.exception()  # type: ignore[misc]
            self.unflushed = 0
            self.task = asyncio.ensure_future(asyncio.to_thread(os.fdatasync, self.fd))

    async def finish(self, quiet: bool = False) -> None:
        if self.task is not None:
            try:
                await self.task
            except OSError:
                if not quiet:
                    raise


def _write_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` in order with as few writev(2) calls as the kernel allows (a regular file
    takes all of it at once; a short write continues where it stopped)."""
    views = [memoryview(p) for p in parts]
    while views:
        written = os.writev(fd, views[:IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


def _flush_durably(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _open_temp(folder: Path) -> tuple[Path, BinaryIO]:
    """A new temp file, exclusively flock()ed while open: the sweeper skips locked files, and the
    lock dies with the process, so a killed writer's file becomes removable at once."""
    while True:
        tmp = folder / uuid.uuid4().hex
        fh: BinaryIO = open(tmp, "wb")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        if os.fstat(fh.fileno()).st_nlink:
            return tmp, fh
        fh.close()  # a sweep removed it between open and lock: take another name


def _sweep_temp(folder: Path, older_than: float) -> int:
    """Remove temp files no process holds open (flock) and untouched for ``older_than`` seconds."""
    removed = 0
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # an upload in flight
        try:
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend:
    name = "local"
    leftover_kind = "stale temporary file(s)"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.tmp = self.root / ".tmp"

    async def start(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def path(self, bucket: str, key: str) -> Path:
        """Resolve a blob path, refusing anything that would leave the root (second line of
        defence behind the key rules)."""
        for part in (bucket, key):
            if not part or "\x00" in part or "\\" in part or part.startswith("/"):
                raise PathEscape(part)
        segments = [bucket, *key.split("/")]
        if any(s in ("", ".", "..") for s in segments) or bucket.startswith("."):
            raise PathEscape(key)
        candidate = (self.root.joinpath(*segments)).resolve()
        if self.root not in candidate.parents:
            raise PathEscape(key)
        return candidate

    async def write(self, bucket: str, key: str, chunks: AsyncIterator[bytes], content_type: str) -> str | None:
        """Stream into a temp file, make it durable, then rename it into place.

        The blob is on disk (fsync, then the directory's fsync for the rename) before this returns,
        because the caller commits a row pointing at it next: a crash must never leave a committed
        row without its bytes. Flushing runs alongside the writes (every FLUSH_EVERY bytes a
        background fdatasync of what is written so far), so the final fsync has little left to do
        and the disk works while the body is still arriving.
        """
        final = self.path(bucket, key)
        tmp, fh = await asyncio.to_thread(_open_temp, self.tmp)
        flusher = _Flusher(fh.fileno())
        try:
            # Gather request chunks into ~1 MiB slices, each written by one writev(2) in a thread:
            # the chunks go from the request straight to the kernel, never joined into a copy.
            parts: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                parts.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_SLICE:
                    await asyncio.to_thread(_write_all, fh.fileno(), parts)
                    flusher.wrote(pending)
                    parts, pending = [], 0
            if parts:
                await asyncio.to_thread(_write_all, fh.fileno(), parts)
            await flusher.finish()
            await asyncio.to_thread(_flush_durably, fh)

            def place() -> None:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)  # still open, so still locked: never swept mid-rename
                _fsync_dir(final.parent)

            await asyncio.to_thread(place)
            fh.close()
            return None
        except BaseException:
            await flusher.finish(quiet=True)
            fh.close()
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    async def read(self, bucket: str, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path(bucket, key)
        try:
            fh: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            if start:
                fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = READ_SLICE if remaining is None else min(READ_SLICE, remaining)
                data = await asyncio.to_thread(fh.read, size)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            fh.close()

    async def delete(self, bucket: str, keys: list[str]) -> None:
        def go() -> None:
            for key in keys:
                path = self.path(bucket, key)
                try:
                    path.unlink()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                # Prune now-empty folders up to the bucket directory.
                parent, stop = path.parent, self.root / bucket
                while parent != stop and stop in parent.parents:
                    try:
                        parent.rmdir()
                    except OSError:
                        break
                    parent = parent.parent

        await asyncio.to_thread(go)

    async def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        src, dst = self.path(src_bucket, src_key), self.path(dst_bucket, dst_key)

        def go() -> None:
            if not src.exists():
                raise BlobNotFound(src_key)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)  # blobs are immutable: a hard link is a free copy
            except OSError:
                tmp, fh = _open_temp(self.tmp)
                with fh, open(src, "rb") as source:
                    shutil.copyfileobj(source, fh, WRITE_SLICE)
                    _flush_durably(fh)
                    os.replace(tmp, dst)
            _fsync_dir(dst.parent)  # durable before the caller commits the copy's row

        await asyncio.to_thread(go)

    async def exists(self, bucket: str, key: str) -> bool:
        return await asyncio.to_thread(self.path(bucket, key).is_file)

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket

        def go() -> list[str]:
            if not base.is_dir():
                return []
            out = []
            for dirpath, _dirs, files in os.walk(base):
                for f in files:
                    rel = os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/")
                    if rel.startswith(prefix):
                        out.append(rel)
            return sorted(out)

        return await asyncio.to_thread(go)

    async def download_url(self, bucket: str, key: str, expires: int, disposition: str | None,
                           content_type: str) -> str | None:
        return None

    async def sweep_leftovers(self, older_than: float, bucket: str | None = None) -> int:
        """Temp files of writers that died (kill -9, power loss). Temp files belong to no bucket,
        so ``bucket`` does not narrow this; files being written are never touched."""
        return await asyncio.to_thread(_sweep_temp, self.tmp, older_than)

    def key_fits(self, bucket: str, key: str) -> bool:
        return True  # segment lengths are the key rules' business; paths have no total limit here
