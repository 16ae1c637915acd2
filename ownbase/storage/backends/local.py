"""Local-disk backend: ``<root>/<bucket>/<key>``, written to a temp file then renamed into place.

File I/O runs in worker threads in large slices so the event loop never blocks and memory stays
bounded by one slice.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from ownbase.storage.backends.base import BlobNotFound

WRITE_SLICE = 1024 * 1024
READ_SLICE = 2 * 1024 * 1024


class PathEscape(ValueError):
    pass


class LocalBackend:
    name = "local"

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
        final = self.path(bucket, key)
        tmp = self.tmp / uuid.uuid4().hex
        fh: BinaryIO = await asyncio.to_thread(open, tmp, "wb")
        try:
            # Gather request chunks into ~1 MiB slices (one join = one copy) written in a thread.
            parts: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                parts.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_SLICE:
                    data = parts[0] if len(parts) == 1 else b"".join(parts)
                    parts, pending = [], 0
                    await asyncio.to_thread(fh.write, data)
            if parts:
                await asyncio.to_thread(fh.write, b"".join(parts))
            await asyncio.to_thread(fh.close)

            def place() -> None:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)

            await asyncio.to_thread(place)
            return None
        except BaseException:
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
                tmp = self.tmp / uuid.uuid4().hex
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)

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
