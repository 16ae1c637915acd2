"""``migrate files --sync``: make the target's buckets and objects equal the source's again.

Logical replication (``migrate sync``) carries tables, not blobs, so objects catch up by a pass:
bucket settings are upserted, then each bucket's ``storage.objects`` is walked on both sides in
name order, a page at a time (a merge join, bounded memory). Per name: only on the source -> copy
(added); on both with a different row -> the row is rewritten, and the bytes copied again when the
version, size or eTag differ (updated); only on the target -> removed (deleted). Rows change with
the app's triggers quiet (as every step); the blobs a change leaves behind are recorded as garbage
in the same transaction and removed right after through the storage layer's sweep, so nothing
waits for the server's periodic sweeper. The bucket's position is recorded after every page: an
interrupted pass resumes there, a finished one starts from the top next time.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

import asyncpg

from ownbase.db.sql import quote_ident
from ownbase.migrate import catalog, progress
from ownbase.migrate.conn import connect, quiet_triggers, restore_triggers
from ownbase.migrate.files import PAGE, _columns, _insert_sql, _transfer
from ownbase.migrate.progress import StepError
from ownbase.migrate.sources import ApiReader, S3Reader, S3Source
from ownbase.settings import Settings
from ownbase.storage.backends import build_backend
from ownbase.storage.service import sweep

STEP = "files-sync"
JSON_COLUMNS = {"metadata", "user_metadata"}  # compared parsed: the text of json and jsonb differ
BYTES_KEYS = ("size", "eTag")  # a change here means new bytes, not only a new row


async def run(source_url: str, from_url: str | None, service_key: str | None, target_url: str, settings: Settings,
              jobs: int, only: set[str], batch: int = PAGE, s3: S3Source | None = None) -> dict[str, Any]:
    started = time.monotonic()
    src = await connect(source_url)
    tgt = await connect(target_url)
    pool = await asyncpg.create_pool(target_url, min_size=1, max_size=1)  # for the storage layer's sweep
    backend = build_backend(settings)
    await backend.start()
    reader: Any = S3Reader(s3) if s3 is not None else ApiReader(str(from_url), str(service_key))
    if s3 is not None:
        await reader.start()
    try:
        if not await catalog.relation_exists(src, "storage", "objects"):
            raise StepError("the source has no storage.objects table")
        await progress.ensure(tgt)
        bucket_result, buckets = await _buckets(src, tgt, only)
        cols = await _columns(src, tgt, "objects")
        state = await progress.done_items(tgt, STEP)
        results = []
        total = int(await src.fetchval("select count(*) from storage.objects where bucket_id = any($1::text[])",
                                       buckets))
        with progress.bar() as bar:
            task = bar.add_task("comparing objects", total=max(1, total), rate="objects")
            for b in buckets:
                results.append(await _bucket(src, tgt, pool, reader, backend, b, cols, state.get(b, {}),
                                             jobs, batch, lambda n: bar.advance(task, n)))
            bar.update(task, completed=max(1, total))
        totals = {k: sum(r[k] for r in results) for k in ("added", "updated", "deleted", "unchanged")}
        return {"ok": not any(r["mismatches"] for r in results), "buckets": bucket_result, "objects": totals,
                "per_bucket": results, "seconds": round(time.monotonic() - started, 3)}
    finally:
        await reader.close()
        await backend.close()
        await pool.close()
        await src.close()
        await tgt.close()


async def _buckets(src: asyncpg.Connection, tgt: asyncpg.Connection,
                   only: set[str]) -> tuple[dict[str, int], list[str]]:
    """Upsert the source's buckets; count the new and the changed ones."""
    cols = await _columns(src, tgt, "buckets")
    select = ", ".join(f"{quote_ident(c)}::text" for c, _ in cols)
    rows = [r for r in await src.fetch(f"select {select} from storage.buckets order by id")
            if not only or r["id"] in only]
    before = {r["id"]: tuple(r) for r in await tgt.fetch(f"select {select} from storage.buckets")}
    changed = [r for r in rows if before.get(r["id"]) != tuple(r)]
    if changed:
        updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c, _ in cols if c != "id")
        await tgt.executemany(_insert_sql("buckets", cols, f"on conflict (id) do update set {updates}"),
                              [tuple(r) for r in changed])
    added = sum(1 for r in changed if r["id"] not in before)
    return ({"added": added, "updated": len(changed) - added, "unchanged": len(rows) - len(changed)},
            [r["id"] for r in rows])


def _same(names: list[str], a: asyncpg.Record, b: asyncpg.Record) -> bool:
    for i, c in enumerate(names):
        x, y = a[i], b[i]
        if c in JSON_COLUMNS and x is not None and y is not None:
            x, y = json.loads(x), json.loads(y)
        if x != y:
            return False
    return True


def _version(names: list[str], row: Any) -> str:
    # ownbase keys blobs by version; a source without one (older Storage) uses the object id (as `files`)
    return row[names.index("version")] or row[names.index("id")]


def _new_bytes(names: list[str], a: asyncpg.Record, b: asyncpg.Record) -> bool:
    if _version(names, a) != _version(names, b):
        return True
    ma = json.loads(a["metadata"]) if a["metadata"] else {}
    mb = json.loads(b["metadata"]) if b["metadata"] else {}
    return any(ma.get(k) != mb.get(k) for k in BYTES_KEYS)


async def _bucket(src: asyncpg.Connection, tgt: asyncpg.Connection, pool: asyncpg.Pool, reader: Any, backend: Any,
                  bucket: str, cols: list[tuple[str, str]], state: dict[str, Any], jobs: int,
                  batch: int, advance: Callable[[int], Any]) -> dict[str, Any]:
    fresh = not state or state.get("complete")
    after = "" if fresh else state.get("after", "")
    counts = {k: 0 if fresh else int(state.get(k, 0)) for k in ("added", "updated", "deleted", "unchanged")}
    mismatches: list[str] = []
    names = [c for c, _ in cols]
    select = ", ".join(f"{quote_ident(c)}::text" for c, _ in cols)
    upsert = _insert_sql("objects", cols, "on conflict (bucket_id, name) do update set " + ", ".join(
        f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in names if c not in ("bucket_id", "name")))
    gate = asyncio.Semaphore(jobs)
    while True:
        # a page of each side; both are cut at the smaller last name of a full page, so the two
        # cover the same name range (Python's str order is code point order, as "C" on UTF-8)
        query = (f"select {select} from storage.objects where bucket_id = $1 and name collate \"C\" > $2"
                 " order by name collate \"C\" limit $3")
        page, their_page = await src.fetch(query, bucket, after, batch), await tgt.fetch(query, bucket, after, batch)
        ends = [p[-1]["name"] for p in (page, their_page) if len(p) == batch]
        upper = min(ends) if ends else None  # None: both sides' remaining rows are all here
        if upper is not None:
            page = [r for r in page if r["name"] <= upper]
        theirs = {r["name"]: r for r in their_page if upper is None or r["name"] <= upper}
        mine = {r["name"] for r in page}
        gone = [r for n, r in theirs.items() if n not in mine]
        rows_only, copy = [], []
        for r in page:
            old = theirs.get(r["name"])
            if old is None or _new_bytes(names, r, old):
                copy.append(r)
            elif not _same(names, r, old):
                rows_only.append(r)
            else:
                counts["unchanged"] += 1

        async def one(row: asyncpg.Record) -> list[Any] | None:
            async with gate:
                values = _with_version(names, row)
                problem, _ = await _transfer(reader, backend, bucket, row["name"], values[names.index("version")],
                                             row["metadata"])
                if problem:
                    mismatches.append(f"{bucket}/{row['name']}: {problem}")
                    return None
                return values

        copied = [v for v in await asyncio.gather(*(one(r) for r in copy)) if v is not None]
        rewrites = copied + [_with_version(names, r) for r in rows_only]
        async with tgt.transaction():
            method = await quiet_triggers(tgt, ["storage.objects"])
            # the garbage trigger is quiet too: record the blobs these changes leave unreferenced
            written = {v[names.index("name")]: v[names.index("version")] for v in copied}
            left = [(n, _version(names, theirs[n])) for n, ver in written.items()
                    if n in theirs and _version(names, theirs[n]) != ver]
            left += [(r["name"], _version(names, r)) for r in gone]
            await tgt.executemany(upsert, [tuple(v) for v in rewrites])
            if gone:
                await tgt.execute("delete from storage.objects where bucket_id = $1 and name = any($2::text[])",
                                  bucket, [r["name"] for r in gone])
            await tgt.executemany(
                "insert into ownbase.storage_pending_blobs (bucket_id, name, version, kind)"
                " values ($1, $2, $3, 'garbage') on conflict (bucket_id, name, version) do update set kind = 'garbage'",
                [(bucket, n, v) for n, v in left])
            await restore_triggers(tgt, method, ["storage.objects"])
            new = sum(1 for v in copied if v[names.index("name")] not in theirs)
            counts["added"] += new
            counts["updated"] += len(rewrites) - new
            counts["deleted"] += len(gone)
            if upper is not None:
                after = upper
            await progress.mark(tgt, STEP, bucket, {"after": after, **counts})
        advance(len(page))
        if left:
            await sweep(pool, backend, bucket_id=bucket)
        if upper is None:
            break
    # complete: the next pass starts from the top again (and retries an object that failed here)
    await progress.mark(tgt, STEP, bucket, {"after": after, **counts, "complete": True})
    return {"bucket": bucket, **counts, "mismatches": mismatches}


def _with_version(names: list[str], row: asyncpg.Record) -> list[Any]:
    values = list(row)
    values[names.index("version")] = _version(names, row)
    return values
