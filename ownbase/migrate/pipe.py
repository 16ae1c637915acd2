"""COPY out of one connection straight into another through a small bounded queue."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import asyncpg

QUEUE_CHUNKS = 8  # COPY chunks in flight (each at most a few hundred KB)


async def stream(src: asyncpg.Connection, query: str, tgt: asyncpg.Connection, table: str, columns: list[str],
                 fmt: str, *, schema: str | None = None, before: Callable[[], Awaitable[None]] | None = None,
                 on_chunk: Callable[[int], None] | None = None) -> int:
    """Copy the rows of ``query`` into ``table``; return the row count. ``before`` runs on ``src``
    first (e.g. to join an exported snapshot) inside the read's transaction."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def produce() -> None:
        try:
            async with src.transaction(isolation="repeatable_read", readonly=True):
                if before is not None:
                    await before()
                await src.copy_from_query(query, output=queue.put, format=fmt)
        finally:
            await queue.put(None)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            if on_chunk is not None:
                on_chunk(len(chunk))
            yield chunk

    producer = asyncio.create_task(produce())
    try:
        status = await tgt.copy_to_table(table, schema_name=schema, columns=columns, source=chunks(), format=fmt)
    except BaseException:
        producer.cancel()
        raise
    await producer  # a failed read fails the copy (the caller's transaction rolls back)
    return int(status.split()[-1])
