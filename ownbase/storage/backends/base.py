"""The blob backend interface.

A blob is addressed by ``(bucket, key)``: ``bucket`` is the storage bucket id and ``key`` a path
the service built from a validated object name and a version (``<name>/<version>``), so backends
never see raw user input. Everything streams: ``write`` consumes an async iterator of chunks and
``read`` yields chunks.
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol


class BlobNotFound(Exception):
    pass


class Backend(Protocol):
    name: str
    leftover_kind: str  # what sweep_leftovers removes, as the sweep report names it

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, bucket: str, key: str, chunks: AsyncIterator[bytes], content_type: str) -> str | None:
        """Store the chunks; the blob becomes visible only once complete. Raises on any error
        after removing whatever was partially written. Returns the store's ETag if it has one."""

    def read(self, bucket: str, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield bytes ``start..end`` (inclusive ``end``; None = to the end)."""

    async def delete(self, bucket: str, keys: list[str]) -> None:
        """Delete blobs; missing ones are ignored."""

    async def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None: ...

    async def exists(self, bucket: str, key: str) -> bool: ...

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Keys under ``prefix`` in ``bucket`` (tests and cleanup)."""

    async def download_url(self, bucket: str, key: str, expires: int, disposition: str | None,
                           content_type: str) -> str | None:
        """A URL the client may be redirected to, or None when downloads are served by ownbase."""

    async def sweep_leftovers(self, older_than: float, bucket: str | None = None) -> int:
        """Remove what writers killed mid-write left behind (temp files, incomplete multipart
        uploads) older than ``older_than`` seconds, never a write in flight; returns how many."""

    def key_fits(self, bucket: str, key: str) -> bool:
        """Whether the store accepts this blob key once prefixes are added (S3: 1,024 bytes)."""
