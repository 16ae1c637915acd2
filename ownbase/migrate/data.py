"""``migrate data``: app table rows streamed with COPY from the source into the target.

* Tables load level by level in foreign-key order, ``jobs`` at a time, each in one target
  transaction that also records its completion: a killed run leaves a table either complete and
  recorded or untouched, so a rerun skips the recorded ones and never duplicates rows.
* Memory stays bounded: COPY chunks pass through a small queue between the two connections.
* All workers read one exported source snapshot, so the tables agree with each other.
* Binary COPY unless a column's type is the app's own array/composite (its binary form embeds
  type OIDs that differ between servers); then text COPY for that table.
* Generated columns are left to the target; user triggers never fire (see conn.quiet_triggers).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from ownbase.db.sql import quote_ident
from ownbase.migrate import catalog, pipe, progress
from ownbase.migrate.conn import connect, qliteral, quiet_triggers, restore_triggers
from ownbase.migrate.progress import StepError


async def run(source_url: str, target_url: str, jobs: int, only: set[str],
              snapshot: str | None = None, replace: bool = False) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url)
    started = time.monotonic()
    try:
        await progress.ensure(tgt)
        schemas = await catalog.app_schemas(src)
        tables = [t for t in await catalog.tables(src, schemas) if not only or t.key in only]
        missing = [t.key for t in tables if not await catalog.relation_exists(tgt, t.schema, t.name)]
        if missing:
            raise StepError(f"tables missing on the target: {', '.join(missing)}; run `ownbase migrate schema` first")
        # The way back copies every table again (each table is atomic, so a killed run just reruns).
        done = {} if replace else await progress.done_items(tgt, "data")
        if not replace:
            await _check_auth_order(tgt, tables)
        results: list[dict[str, Any]] = [{"table": k, "rows": v.get("rows"), "status": "done earlier"}
                                         for k, v in done.items() if any(t.key == k for t in tables)]
        todo = [t for t in tables if t.key not in done]
        if snapshot is None:
            async with src.transaction(isolation="repeatable_read", readonly=True):
                exported = await src.fetchval("select pg_export_snapshot()")
                results += await _copy_all(source_url, target_url, exported, todo, jobs, replace)
        else:  # a replication slot's snapshot (migrate sync): changes after it arrive by replication
            results += await _copy_all(source_url, target_url, snapshot, todo, jobs, replace)
        seqs = await _sequences(src, tgt, schemas)
        mviews = await catalog.matviews(tgt, schemas)
        for mv in mviews:
            await tgt.execute(f"refresh materialized view {mv}")
        return {"ok": True, "tables": results, "sequences": seqs, "materialized_views": mviews,
                "seconds": round(time.monotonic() - started, 2),
                "rows": sum(r["rows"] or 0 for r in results if r["status"] == "copied")}
    finally:
        await src.close()
        await tgt.close()


async def _copy_all(source_url: str, target_url: str, snapshot: str, todo: list[catalog.Table],
                    jobs: int, replace: bool) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with progress.bar(bytes_mode=True) as bar:
        task = bar.add_task("copying tables", total=max(1, sum(t.bytes for t in todo)))
        gate = asyncio.Semaphore(jobs)
        for level in catalog.levels(todo):
            results += await asyncio.gather(*(
                _copy_table(source_url, target_url, snapshot, t, gate, bar, task, replace) for t in level))
        bar.update(task, completed=max(1, sum(t.bytes for t in todo)))
    return results


async def _check_auth_order(tgt: asyncpg.Connection, tables: list[catalog.Table]) -> None:
    """Without replica mode, foreign keys to auth.users need the users copied first."""
    try:
        async with tgt.transaction():
            await tgt.execute("set local session_replication_role = replica")
        return
    except asyncpg.PostgresError:
        pass
    refs = await tgt.fetch(
        "select conrelid::regclass::text as t from pg_constraint where contype = 'f'"
        " and confrelid = 'auth.users'::regclass")
    if refs and not await tgt.fetchval("select exists (select 1 from auth.users)"):
        raise StepError(f"{', '.join(r['t'] for r in refs)} reference auth.users, which is empty on the target,"
                        " and this role may not skip foreign-key checks: run `ownbase migrate users` first")


async def _copy_table(source_url: str, target_url: str, snapshot: str, t: catalog.Table,
                      gate: asyncio.Semaphore, bar: Any, task: Any, replace: bool) -> dict[str, Any]:
    async with gate:
        src = await connect(source_url)
        tgt = await connect(target_url)
        try:
            return await _copy(src, tgt, snapshot, t, bar, task, replace)
        finally:
            await src.close()
            await tgt.close()


async def _copy(src: asyncpg.Connection, tgt: asyncpg.Connection, snapshot: str, t: catalog.Table,
                bar: Any, task: Any, replace: bool) -> dict[str, Any]:
    cols = t.copy_columns
    fmt = "binary" if all(c.binary_safe for c in cols) else "text"
    col_sql = ", ".join(quote_ident(c.name) for c in cols)
    only = "only " if t.kind == "r" else ""  # a partitioned parent reads through its partitions
    query = f"select {col_sql} from {only}{t.qualified}"
    async with tgt.transaction():
        method = await quiet_triggers(tgt, [t.qualified])
        if replace:  # the way back: the target table becomes the source's (tables it feeds follow later)
            await tgt.execute(f"truncate only {t.qualified} cascade")
        elif await tgt.fetchval(f"select exists (select 1 from {t.qualified})"):
            raise StepError(f"{t.key} already has rows on the target but no completion record from an earlier"
                            " run; empty it (or drop and rerun `migrate schema`) and run again")
        rows = await pipe.stream(
            src, query, tgt, t.name, [c.name for c in cols], fmt, schema=t.schema,
            before=lambda: src.execute(f"set transaction snapshot {qliteral(snapshot)}"),
            on_chunk=lambda n: bar.advance(task, n))
        await restore_triggers(tgt, method, [t.qualified])
        await progress.mark(tgt, "data", t.key, {"rows": rows, "format": fmt, "triggers": method})
    return {"table": t.key, "rows": rows, "status": "copied", "format": fmt}


async def _sequences(src: asyncpg.Connection, tgt: asyncpg.Connection, schemas: list[str]) -> int:
    n = 0
    for r in await catalog.sequences(src, schemas):
        name = f"{quote_ident(r['schemaname'])}.{quote_ident(r['sequencename'])}"
        if not await catalog.relation_exists(tgt, r["schemaname"], r["sequencename"]):
            continue
        state = await src.fetchrow(f"select last_value, is_called from {name}")
        await tgt.execute("select pg_catalog.setval($1::regclass, $2, $3)", name, state["last_value"],
                          state["is_called"])
        n += 1
    return n
