"""``migrate plan``: what will move and what needs attention. Reads only; writes nothing."""

from __future__ import annotations

from typing import Any

import asyncpg

from ownbase.migrate import catalog, extensions
from ownbase.migrate.conn import connect

# Conservative rates for the duration estimate (one laptop, one network hop).
ROWS_PER_SECOND = 50_000
BYTES_PER_SECOND = 20 * 1024 * 1024
SMALL_TABLE_BYTES = 64 * 1024 * 1024


async def _count(conn: asyncpg.Connection, query: str, *args: Any) -> int | None:
    try:
        return int(await conn.fetchval(query, *args) or 0)
    except asyncpg.PostgresError:
        return None  # absent or not readable on this source: reported as unknown


async def build(source_url: str, target_url: str | None, skip: set[str]) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url) if target_url else None
    try:
        schemas = await catalog.app_schemas(src)
        tables = await catalog.tables(src, schemas)
        for t in tables:
            if t.est_rows == 0 and t.bytes < SMALL_TABLE_BYTES:  # never analysed: count small ones
                t.est_rows = int(await src.fetchval(f"select count(*) from {t.qualified}"))
        exts = await extensions.source_extensions(src, schemas)
        await extensions.decide(exts, tgt, skip)
        report: dict[str, Any] = {
            "source_version": await src.fetchval("show server_version"),
            "app_schemas": schemas,
            "tables": [{"table": t.key, "rows_estimate": t.est_rows, "bytes": t.bytes,
                        "partitioned": t.kind == "p",
                        "generated_columns": [c.name for c in t.columns if c.generated]} for t in tables],
            "extensions": [vars(e) for e in exts],
            "supabase_only": await _supabase_only(src, schemas),
            "auth": {k: await _count(src, f"select count(*) from auth.{k}")
                     for k in ("users", "identities", "sessions", "refresh_tokens")},
            "password_hashes": await _hash_kinds(src),
            "storage": await _storage(src),
            "realtime_publication": [r["t"] for r in await src.fetch(
                "select schemaname || '.' || tablename as t from pg_publication_tables"
                " where pubname = 'supabase_realtime' order by 1")],
            "applied_migrations": await _migrations(src),
        }
        rows = sum(t.est_rows for t in tables) + (report["auth"]["users"] or 0)
        report["estimated_seconds"] = round(rows / ROWS_PER_SECOND + report["storage"]["bytes"] / BYTES_PER_SECOND, 1)
        report["needs_attention"] = _attention(report)
        return report
    finally:
        await src.close()
        if tgt is not None:
            await tgt.close()


async def _supabase_only(conn: asyncpg.Connection, schemas: list[str]) -> dict[str, list[str]]:
    """App objects living in, or hooked into, the schemas Supabase manages."""
    out: dict[str, list[str]] = {}
    out["auth_users_triggers"] = [f"{r['tgname']} -> {r['fn']}" for r in await conn.fetch(
        """select t.tgname, n.nspname || '.' || p.proname as fn from pg_trigger t
           join pg_proc p on p.oid = t.tgfoid join pg_namespace n on n.oid = p.pronamespace
           where t.tgrelid = 'auth.users'::regclass and not t.tgisinternal
             and n.nspname = any($1::text[]) order by 1""", schemas)] if await _has(conn, "auth", "users") else []
    out["storage_policies"] = [f"{r['tablename']}: {r['policyname']}" for r in await conn.fetch(
        "select tablename, policyname from pg_policies where schemaname = 'storage' order by 1, 2")]
    refs = []
    for r in await conn.fetch(
            """select n.nspname || '.' || p.proname as fn, p.prosrc from pg_proc p
               join pg_namespace n on n.oid = p.pronamespace where n.nspname = any($1::text[])
                 and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')""",
            schemas):
        hits = [s for s in ("vault.", "cron.", "net.", "pgsodium.", "supabase_functions.", "graphql.")
                if s in (r["prosrc"] or "")]
        if hits:
            refs.append(f"{r['fn']} uses {', '.join(h.rstrip('.') for h in hits)}")
    out["functions_using_platform"] = refs
    return out


async def _has(conn: asyncpg.Connection, schema: str, table: str) -> bool:
    return await catalog.relation_exists(conn, schema, table)


async def _hash_kinds(conn: asyncpg.Connection) -> dict[str, int]:
    try:
        rows = await conn.fetch(
            """select case when coalesce(encrypted_password, '') = '' then 'none'
                           when encrypted_password like '$2%' then 'bcrypt'
                           when encrypted_password like '$argon2%' then 'argon2'
                           when encrypted_password like '$fbscrypt$%' then 'firebase-scrypt'
                           else 'other' end as kind, count(*) as n
               from auth.users group by 1 order by 1""")
    except asyncpg.PostgresError:
        return {}
    return {r["kind"]: r["n"] for r in rows}


async def _storage(conn: asyncpg.Connection) -> dict[str, Any]:
    try:
        buckets = await conn.fetch(
            """select b.id, b.public, count(o.id) as objects,
                      coalesce(sum((o.metadata ->> 'size')::bigint), 0)::bigint as bytes
               from storage.buckets b left join storage.objects o on o.bucket_id = b.id
               group by b.id, b.public order by b.id""")
    except asyncpg.PostgresError:
        return {"buckets": [], "objects": 0, "bytes": 0}
    return {"buckets": [dict(b) for b in buckets], "objects": sum(b["objects"] for b in buckets),
            "bytes": int(sum(b["bytes"] for b in buckets))}


async def _migrations(conn: asyncpg.Connection) -> list[str]:
    try:
        return [f"{r['version']} {r['name'] or ''}".strip() for r in await conn.fetch(
            "select version, name from supabase_migrations.schema_migrations order by version")]
    except asyncpg.PostgresError:
        return []


def _attention(report: dict[str, Any]) -> list[str]:
    notes = []
    for e in report["extensions"]:
        if e["action"] == "refuse":
            deps = ", ".join(e["dependents"]) or (f"{e['data_rows']} rows" if e["data_rows"] else "nothing found")
            notes.append(f"extension {e['name']} is not available on the target (used by: {deps});"
                         f" decide, then pass --skip-extension {e['name']}")
        elif e["action"] == "stand-in":
            notes.append(f"extension {e['name']}: core stand-ins for {', '.join(extensions.STAND_INS[e['name']])}")
    for fn in report["supabase_only"]["functions_using_platform"]:
        notes.append(f"{fn}: rewrite or drop after the move")
    if report["password_hashes"].get("other"):
        notes.append(f"{report['password_hashes']['other']} users have an unknown password hash kind")
    return notes
