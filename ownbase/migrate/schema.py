"""``migrate schema``: the app's schemas plus what the app put into Supabase-managed schemas.

One transaction on the target, as its ordinary (non-superuser) owner: objects end up owned by the
target's owner; grants to anon/authenticated/service_role/PUBLIC are replayed exactly (the target's
default privileges are reset first), grants to Supabase-only roles are dropped and counted.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ownbase.db.sql import quote_ident, quote_qualified
from ownbase.migrate import catalog, dump, extensions, progress
from ownbase.migrate.conn import connect, server_major
from ownbase.migrate.progress import StepError

REQUEST_ROLES = "anon, authenticated, service_role"
HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)


class Refused(StepError):
    pass


async def run(source_url: str, target_url: str, skip: set[str], pg_dump: str | None) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url)
    try:
        await progress.ensure(tgt)
        schemas = await catalog.app_schemas(src)
        exts = await extensions.source_extensions(src, schemas)
        await extensions.decide(exts, tgt, skip)
        refused = [e for e in exts if e.action == "refuse"]
        if refused:
            raise Refused("; ".join(
                f"extension {e.name} is not available on the target"
                f" (used by: {', '.join(e.dependents) or str(e.data_rows) + ' rows'})" for e in refused)
                + ". Move or replace what uses it, then pass --skip-extension NAME for each.")
        done = await progress.done_items(tgt, "schema")
        if "applied" in done:
            return {"ok": True, "already_applied": True, "summary": {"status": "already applied"},
                    **done["applied"]}
        binary = dump.find_pg_dump(await server_major(src), pg_dump)
        ddl, acls, dropped = dump.build(dump.dump(binary, source_url, schemas))
        summary: dict[str, Any] = {"schemas": ", ".join(schemas), "pg_dump": binary}
        async with tgt.transaction():
            summary["extensions"] = await _extensions(tgt, exts)
            await tgt.execute(ddl)
            await tgt.execute("set local search_path = pg_catalog")
            await _reset_grants(tgt, schemas)
            for stmt in acls:
                await tgt.execute(stmt)
            summary["grants"] = len(acls)
            summary["dropped"] = json.dumps(dropped)
            summary["storage_policies"] = await _storage_policies(src, tgt)
            summary["auth_triggers"] = await _auth_triggers(src, tgt, schemas)
            summary["realtime_tables"] = await _publication(src, tgt, schemas)
            summary["migration_history"] = await _history(src, tgt)
            await progress.mark(tgt, "schema", "applied", summary)
        return {"ok": True, "summary": summary, "extensions": [vars(e) for e in exts]}
    finally:
        await src.close()
        await tgt.close()


async def _extensions(tgt: asyncpg.Connection, exts: list[extensions.Extension]) -> str:
    notes = []
    stand_in = False
    for e in exts:
        if e.action == "create":
            try:
                async with tgt.transaction():
                    await tgt.execute(f"create schema if not exists {quote_ident(e.schema)}")
                    await tgt.execute(f"create extension if not exists {quote_ident(e.name)} "
                                      f"with schema {quote_ident(e.schema)}")
                notes.append(f"{e.name}: created")
                continue
            except asyncpg.PostgresError as exc:
                if e.name not in extensions.STAND_INS:
                    raise Refused(f"extension {e.name} could not be created on the target ({exc});"
                                  f" pass --skip-extension {e.name} to leave it behind") from None
                e.action = "stand-in"
        if e.action == "stand-in":
            stand_in = True
            notes.append(f"{e.name}: core stand-ins for {', '.join(extensions.STAND_INS[e.name])}")
        elif e.action == "skip":
            notes.append(f"{e.name}: left behind (--skip-extension)")
    if stand_in:
        await tgt.execute(extensions.STAND_IN_SQL)
    return "; ".join(notes)


async def _reset_grants(tgt: asyncpg.Connection, schemas: list[str]) -> None:
    """Drop what the target's default privileges granted, so the source's grants replay exactly."""
    for s in schemas:
        q = quote_ident(s)
        await tgt.execute(f"revoke all on all tables in schema {q} from {REQUEST_ROLES}")
        await tgt.execute(f"revoke all on all sequences in schema {q} from {REQUEST_ROLES}")
        await tgt.execute(f"revoke all on all routines in schema {q} from {REQUEST_ROLES}")


async def _storage_policies(src: asyncpg.Connection, tgt: asyncpg.Connection) -> int:
    rows = await src.fetch(
        """select tablename, policyname, permissive, roles::text[] as roles, cmd, qual, with_check
           from pg_policies where schemaname = 'storage' and tablename in ('objects', 'buckets')""")
    for r in rows:
        table = quote_qualified("storage", r["tablename"])
        roles = ", ".join("public" if x == "public" else quote_ident(x) for x in r["roles"])
        sql = (f"create policy {quote_ident(r['policyname'])} on {table} as {r['permissive'].lower()}"
               f" for {r['cmd'].lower()} to {roles}")
        if r["qual"] is not None:
            sql += f" using ({r['qual']})"
        if r["with_check"] is not None:
            sql += f" with check ({r['with_check']})"
        await tgt.execute(f"drop policy if exists {quote_ident(r['policyname'])} on {table}")
        await tgt.execute(sql)
    return len(rows)


async def _auth_triggers(src: asyncpg.Connection, tgt: asyncpg.Connection, schemas: list[str]) -> int:
    if not await catalog.relation_exists(src, "auth", "users"):
        return 0
    rows = await src.fetch(
        """select t.tgname, pg_get_triggerdef(t.oid) as def from pg_trigger t
           join pg_proc p on p.oid = t.tgfoid join pg_namespace n on n.oid = p.pronamespace
           where t.tgrelid = 'auth.users'::regclass and not t.tgisinternal and n.nspname = any($1::text[])""",
        schemas)
    for r in rows:
        await tgt.execute(f"drop trigger if exists {quote_ident(r['tgname'])} on auth.users")
        await tgt.execute(r["def"])
    return len(rows)


async def _publication(src: asyncpg.Connection, tgt: asyncpg.Connection, schemas: list[str]) -> int:
    rows = await src.fetch(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'"
        " and schemaname = any($1::text[])", schemas)
    if not rows:
        return 0
    if not await tgt.fetchval("select exists (select 1 from pg_publication where pubname = 'supabase_realtime')"):
        await tgt.execute("create publication supabase_realtime")
    have = {(r["schemaname"], r["tablename"]) for r in await tgt.fetch(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'")}
    for r in rows:
        if (r["schemaname"], r["tablename"]) not in have:
            table = quote_qualified(r["schemaname"], r["tablename"])
            await tgt.execute(f"alter publication supabase_realtime add table {table}")
    return len(rows)


async def _history(src: asyncpg.Connection, tgt: asyncpg.Connection) -> int:
    if not await catalog.relation_exists(src, "supabase_migrations", "schema_migrations"):
        return 0
    cols = await catalog.column_names(src, "supabase_migrations", "schema_migrations")
    name = "name" if "name" in cols else "null::text"
    statements = "statements" if "statements" in cols else "null::text[]"
    rows = await src.fetch(f"select version, {name} as name, {statements} as statements"
                           " from supabase_migrations.schema_migrations")
    for stmt in HISTORY_DDL:
        await tgt.execute(stmt)
    await tgt.executemany(
        "insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)"
        " on conflict (version) do nothing", [(r["version"], r["name"], r["statements"]) for r in rows])
    return len(rows)
