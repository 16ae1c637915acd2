"""``migrate files``: buckets, ``storage.objects`` rows and their bytes.

Bytes stream from the source Storage API (service key) or its S3 endpoint (sources.py) into the
configured backend, ``jobs`` at a time, hashed on the way and compared with the size and MD5 eTag
the source recorded. Objects go in name order by pages; after each page the bucket's resume point
(last name) is recorded on the target. Blob keys and rows keep the source's ``version``, so a rerun
rewrites the same blob and the row insert (``on conflict do nothing``) never duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from typing import Any, AsyncIterator

import asyncpg

from ownbase.db.sql import quote_ident
from ownbase.migrate import catalog, progress
from ownbase.migrate.conn import connect, quiet_triggers, restore_triggers
from ownbase.migrate.progress import StepError
from ownbase.migrate.sources import ApiReader, S3Reader, S3Source
from ownbase.settings import Settings

PAGE = 200
MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


def blob_key(name: str, version: str) -> str:
    # ownbase's layout: every version of an object is its own immutable blob (storage/service.py)
    return f"{name}/{version}"


async def _columns(src: asyncpg.Connection, tgt: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    """Columns both sides have (target's non-generated), with the target's type for casting."""
    source_cols = await catalog.column_names(src, "storage", table)
    rows = await tgt.fetch(
        """select a.attname, format_type(a.atttypid, a.atttypmod) as type from pg_attribute a
           where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
           order by a.attnum""", f"storage.{table}")
    return [(r["attname"], r["type"]) for r in rows if r["attname"] in source_cols]


def _insert_sql(table: str, cols: list[tuple[str, str]], conflict: str) -> str:
    names = ", ".join(quote_ident(c) for c, _ in cols)
    values = ", ".join(f"${i}::text::{t}" for i, (_, t) in enumerate(cols, 1))
    return f"insert into storage.{table} ({names}) values ({values}) {conflict}"


async def run(source_url: str, from_url: str | None, service_key: str | None, target_url: str, settings: Settings,
              jobs: int, only: set[str], batch: int = PAGE, s3: S3Source | None = None) -> dict[str, Any]:
    from ownbase.storage.backends import build_backend

    started = time.monotonic()
    src = await connect(source_url)
    tgt = await connect(target_url)
    backend = build_backend(settings)
    await backend.start()
    reader: Any
    if s3 is not None:
        reader = S3Reader(s3)
        await reader.start()
    else:
        reader = ApiReader(str(from_url), str(service_key))
    try:
        if not await catalog.relation_exists(src, "storage", "objects"):
            raise StepError("the source has no storage.objects table")
        await progress.ensure(tgt)
        bucket_cols = await _columns(src, tgt, "buckets")
        object_cols = await _columns(src, tgt, "objects")
        buckets = [b for b in await src.fetch(
            f"select {', '.join(quote_ident(c) + '::text' for c, _ in bucket_cols)} from storage.buckets order by id")
            if not only or b["id"] in only]
        updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c, _ in bucket_cols if c != "id")
        await tgt.executemany(_insert_sql("buckets", bucket_cols, f"on conflict (id) do update set {updates}"),
                              [tuple(b) for b in buckets])
        done = await progress.done_items(tgt, "files")
        totals = await src.fetch(
            "select bucket_id, count(*) as n, coalesce(sum((metadata ->> 'size')::bigint), 0)::bigint as bytes"
            " from storage.objects group by 1")
        total_bytes = sum(r["bytes"] for r in totals if r["bucket_id"] in {b["id"] for b in buckets})
        results = []
        with progress.bar(bytes_mode=True) as bar:
            task = bar.add_task("copying objects", total=max(1, total_bytes))
            for b in buckets:
                results.append(await _bucket(src, tgt, reader, backend, b["id"], object_cols,
                                             done.get(b["id"], {}), jobs, batch, bar, task))
            bar.update(task, completed=max(1, total_bytes))  # objects already present were skipped
        return {"ok": not any(r["mismatches"] for r in results), "buckets": results,
                "seconds": round(time.monotonic() - started, 3)}
    finally:
        await reader.close()
        await backend.close()
        await src.close()
        await tgt.close()


async def _bucket(src: asyncpg.Connection, tgt: asyncpg.Connection, reader: Any, backend: Any,
                  bucket: str, cols: list[tuple[str, str]], state: dict[str, Any], jobs: int, batch: int,
                  bar: Any, task: Any) -> dict[str, Any]:
    after = state.get("after", "")
    copied, nbytes = int(state.get("copied", 0)), int(state.get("bytes", 0))
    mismatches: list[str] = []
    total = int(await src.fetchval("select count(*) from storage.objects where bucket_id = $1", bucket))
    if state.get("complete"):
        after = ""  # a finished bucket is walked again for objects added since (present ones are skipped)
    select = ", ".join(f"{quote_ident(c)}::text" for c, _ in cols)
    insert = _insert_sql("objects", cols, "on conflict (bucket_id, name) do nothing")
    names = [c for c, _ in cols]
    gate = asyncio.Semaphore(jobs)
    while True:
        page = await src.fetch(
            f"select {select} from storage.objects where bucket_id = $1 and name collate \"C\" > $2"
            f" order by name collate \"C\""
            " limit $3", bucket, after, batch)
        if not page:
            break

        async def one(row: asyncpg.Record) -> tuple[list[Any], int] | None:
            async with gate:
                values = list(row)
                if values[names.index("version")] is None:  # ownbase keys blobs by version
                    values[names.index("version")] = values[names.index("id")]
                problem, size = await _transfer(reader, backend, bucket, row["name"],
                                                values[names.index("version")], row["metadata"])
                bar.advance(task, size)
                if problem:
                    mismatches.append(f"{bucket}/{row['name']}: {problem}")
                    return None
                return values, size

        present = {r["name"] for r in await tgt.fetch(
            "select name from storage.objects where bucket_id = $1 and name = any($2::text[])",
            bucket, [r["name"] for r in page])}
        todo = [r for r in page if r["name"] not in present]
        done = [r for r in await asyncio.gather(*(one(r) for r in todo)) if r is not None]
        async with tgt.transaction():
            method = await quiet_triggers(tgt, ["storage.objects"])
            await tgt.executemany(insert, [tuple(v) for v, _ in done])
            await restore_triggers(tgt, method, ["storage.objects"])
            copied += len(done)
            nbytes += sum(s for _, s in done)
            after = page[-1]["name"]
            await progress.mark(tgt, "files", bucket, {"after": after, "copied": copied, "bytes": nbytes})
    if not mismatches:
        await progress.mark(tgt, "files", bucket, {"after": after, "copied": copied, "bytes": nbytes,
                                                  "complete": True})
    return {"bucket": bucket, "objects": total, "copied": copied, "bytes": nbytes, "mismatches": mismatches,
            "status": "copied"}


async def _transfer(reader: Any, backend: Any, bucket: str, name: str, version: str,
                    metadata: str | None) -> tuple[str | None, int]:
    """Stream one object into the backend; return (problem or None, bytes)."""
    import json

    meta = json.loads(metadata) if metadata else {}
    md5, sha, size = hashlib.md5(), hashlib.sha256(), 0
    async with reader.open(bucket, name) as (problem, body, content_type):
        if problem:
            return problem, 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in body:
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
                yield chunk

        await backend.write(bucket, blob_key(name, version), chunks(), meta.get("mimetype") or content_type)
    expected = meta.get("size")
    m = MD5_ETAG.match(str(meta.get("eTag", "")))
    problem = None
    if expected is not None and int(expected) != size:
        problem = f"size {size} != {expected}"
    elif m and m.group(1) != md5.hexdigest():
        problem = f"md5 {md5.hexdigest()} != eTag {m.group(1)}"
    if problem:
        await backend.delete(bucket, [blob_key(name, version)])
    return problem, size
