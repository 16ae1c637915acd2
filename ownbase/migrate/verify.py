"""``migrate verify``: the target holds what the source holds.

* every app table: row count and an order-independent checksum (the sum of a 64-bit hash of each
  row's text form, with URL rewrites applied to the source side); on a difference, the primary
  keys of the differing rows are named;
* users, identities and password hashes, the same way, naming user ids;
* objects: count and bytes per bucket, each row's metadata, and each blob's MD5 against the
  source's eTag (so a changed byte on the target is found);
* RLS policies and grants to the request roles.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import asyncpg

from ownbase.db.sql import quote_ident
from ownbase.migrate import catalog, progress
from ownbase.migrate.conn import connect, qliteral
from ownbase.settings import Settings

DIFF_LIMIT = 1_000_000  # rows above which only the checksum is compared (no per-row naming)
NAMED = 5
USER_COLUMNS = ("id", "instance_id", "aud", "role", "email", "encrypted_password", "email_confirmed_at",
                "phone", "phone_confirmed_at", "raw_app_meta_data", "raw_user_meta_data", "banned_until",
                "is_anonymous", "is_sso_user", "created_at", "deleted_at")
IDENTITY_COLUMNS = ("id", "user_id", "provider", "provider_id", "identity_data", "created_at")
OBJECT_COLUMNS = ("id", "bucket_id", "name", "owner", "owner_id", "metadata", "version", "created_at")
REQUEST_ROLES = ("anon", "authenticated", "service_role", "PUBLIC")
MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


def _row_expr(cols: list[str], rewrites: dict[str, tuple[str, str, str]] | None = None) -> str:
    parts = []
    for c in cols:
        if rewrites and c in rewrites:
            old, new, type_ = rewrites[c]
            text = f"{quote_ident(c)}::text" if type_ in ("jsonb", "json") else quote_ident(c)
            back = f"::{type_}" if type_ in ("jsonb", "json") else ""
            parts.append(f"replace({text}, {qliteral(old)}, {qliteral(new)}){back}")
        else:
            parts.append(quote_ident(c))
    return f"row({', '.join(parts)})::text"


def _sum_sql(table: str, row: str, where: str = "") -> str:
    return (f"select count(*) as n, coalesce(sum(('x' || left(md5({row}), 16))::bit(64)::bigint::numeric), 0)::text"
            f" as sum from {table} {where}")


async def _diff(src: asyncpg.Connection, tgt: asyncpg.Connection, s_table: str, t_table: str,
                key: str, s_row: str, t_row: str, where: str = "", args: tuple[Any, ...] = ()) -> list[str]:
    q = "select {k}::text as k, md5({r}) as h from {t} {w}"
    a = {r["k"]: r["h"] for r in await src.fetch(q.format(k=key, r=s_row, t=s_table, w=where), *args)}
    b = {r["k"]: r["h"] for r in await tgt.fetch(q.format(k=key, r=t_row, t=t_table, w=where), *args)}
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return [f"{k} ({'missing on target' if k not in b else 'extra on target' if k not in a else 'differs'})"
            for k in keys[:NAMED]] + ([f"... {len(keys) - NAMED} more"] if len(keys) > NAMED else [])


async def _primary_key(conn: asyncpg.Connection, table: str) -> str | None:
    cols = await conn.fetch(
        """select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid
           and a.attnum = any(i.indkey) where i.indrelid = $1::regclass and i.indisprimary order by a.attnum""",
        table)
    if not cols:
        return None
    names = [quote_ident(c["attname"]) for c in cols]
    return "row(" + ", ".join(names) + ")" if len(names) > 1 else names[0]


class Checks:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.mismatches: list[str] = []

    def add(self, check: str, source: Any, target: Any, ok: bool, detail: list[str] | None = None) -> None:
        self.rows.append({"check": check, "source": source, "target": target, "ok": ok, "detail": detail or []})
        if not ok:
            self.mismatches.append(check + (": " + "; ".join(detail) if detail else ""))


async def _compare(checks: Checks, src: asyncpg.Connection, tgt: asyncpg.Connection, label: str, table: str,
                   cols: list[str], rewrites: dict[str, tuple[str, str, str]] | None = None,
                   key: str | None = None) -> None:
    s_row, t_row = _row_expr(cols, rewrites), _row_expr(cols)
    a = await src.fetchrow(_sum_sql(table, s_row))
    b = await tgt.fetchrow(_sum_sql(table, t_row))
    ok = a["n"] == b["n"] and a["sum"] == b["sum"]
    detail: list[str] = []
    if not ok and key and max(a["n"], b["n"]) <= DIFF_LIMIT:
        detail = await _diff(src, tgt, table, table, key, s_row, t_row)
    checks.add(label, a["n"], b["n"], ok, detail)


async def run(source_url: str, target_url: str, settings: Settings) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url)
    checks = Checks()
    try:
        await progress.ensure(tgt)
        rewrites = await progress.done_items(tgt, "rewrite-urls")
        schemas = await catalog.app_schemas(src)
        for t in await catalog.tables(src, schemas):
            if not await catalog.relation_exists(tgt, t.schema, t.name):
                checks.add(f"table {t.key}", "present", "missing", False)
                continue
            target_cols = await catalog.column_names(tgt, t.schema, t.name)
            cols = [c.name for c in t.columns if c.name in target_cols]
            types = {c.name: c.type for c in t.columns}
            mine = {k.split(".")[-1]: (v["old"], v["new"], types.get(k.split(".")[-1], "text"))
                    for k, v in rewrites.items() if k.rsplit(".", 1)[0] == t.key}
            await _compare(checks, src, tgt, f"table {t.key}", t.qualified, cols, mine,
                           await _primary_key(src, t.qualified))
        if await catalog.relation_exists(src, "auth", "users"):
            await _auth(checks, src, tgt)
        if await catalog.relation_exists(src, "storage", "objects"):
            await _objects(checks, src, tgt, settings)
        await _policies(checks, src, tgt, schemas)
        await _grants(checks, src, tgt, schemas)
        return {"ok": not checks.mismatches, "checks": checks.rows, "mismatches": checks.mismatches}
    finally:
        await src.close()
        await tgt.close()


async def _auth(checks: Checks, src: asyncpg.Connection, tgt: asyncpg.Connection) -> None:
    for table, wanted in (("users", USER_COLUMNS), ("identities", IDENTITY_COLUMNS)):
        s_cols = await catalog.column_names(src, "auth", table)
        t_cols = await catalog.column_names(tgt, "auth", table)
        cols = [c for c in wanted if c in s_cols and c in t_cols]
        await _compare(checks, src, tgt, f"auth.{table}", f"auth.{table}", cols, key="id")
    q = "select id::text as id, md5(coalesce(encrypted_password, '')) as h from auth.users"
    a = {r["id"]: r["h"] for r in await src.fetch(q)}
    b = {r["id"]: r["h"] for r in await tgt.fetch(q)}
    differ = sorted(k for k in a if b.get(k) != a[k])
    more = [f"... {len(differ) - NAMED} more"] if len(differ) > NAMED else []
    checks.add("password hashes", len(a), len(a) - len(differ), not differ,
               [f"user {k}" for k in differ[:NAMED]] + more)


async def _objects(checks: Checks, src: asyncpg.Connection, tgt: asyncpg.Connection, settings: Settings) -> None:
    from ownbase.storage.backends import build_backend

    q = ("select bucket_id, count(*) as n, coalesce(sum((metadata ->> 'size')::bigint), 0)::bigint as bytes"
         " from storage.objects group by 1 order by 1")
    a = {r["bucket_id"]: (r["n"], r["bytes"]) for r in await src.fetch(q)}
    b = {r["bucket_id"]: (r["n"], r["bytes"]) for r in await tgt.fetch(q)}
    for bucket in sorted(a.keys() | b.keys()):
        checks.add(f"objects in {bucket} (count, bytes)", a.get(bucket), b.get(bucket), a.get(bucket) == b.get(bucket))
    s_cols = await catalog.column_names(src, "storage", "objects")
    cols = [c for c in OBJECT_COLUMNS if c in s_cols]
    await _compare(checks, src, tgt, "storage.objects rows", "storage.objects", cols,
                   key="bucket_id || '/' || name")
    # Bytes: every target blob hashed and compared with the source's MD5 eTag.
    source_etags = {(r["bucket_id"], r["name"]): r["etag"] for r in await src.fetch(
        "select bucket_id, name, metadata ->> 'eTag' as etag from storage.objects")}
    rows = await tgt.fetch("select bucket_id, name, version from storage.objects")
    backend = build_backend(settings)
    await backend.start()
    bad: list[str] = []
    gate = asyncio.Semaphore(8)

    async def one(r: asyncpg.Record) -> None:
        m = MD5_ETAG.match(source_etags.get((r["bucket_id"], r["name"])) or "")
        if not m or r["version"] is None:
            return
        async with gate:
            md5 = hashlib.md5()
            try:
                async for chunk in backend.read(r["bucket_id"], f"{r['name']}/{r['version']}"):
                    md5.update(chunk)
            except Exception:  # noqa: BLE001 - a missing blob is a finding, not a crash
                bad.append(f"{r['bucket_id']}/{r['name']} (blob missing)")
                return
            if md5.hexdigest() != m.group(1):
                bad.append(f"{r['bucket_id']}/{r['name']} (bytes differ)")

    try:
        await asyncio.gather(*(one(r) for r in rows))
    finally:
        await backend.close()
    bad.sort()
    checks.add("object bytes (md5)", len(rows), len(rows) - len(bad), not bad,
               bad[:NAMED] + ([f"... {len(bad) - NAMED} more"] if len(bad) > NAMED else []))


async def _policies(checks: Checks, src: asyncpg.Connection, tgt: asyncpg.Connection, schemas: list[str]) -> None:
    q = """select schemaname || '.' || tablename || ' ' || policyname as name,
                  row(permissive, (select array_agg(x order by x) from unnest(roles) x), cmd, qual,
                      with_check)::text as def
           from pg_policies where (schemaname = any($1::text[])
              or (schemaname = 'storage' and tablename in ('objects', 'buckets')))
             and policyname not like 'ownbase\\_%'"""
    a = {r["name"]: r["def"] for r in await src.fetch(q, schemas)}
    b = {r["name"]: r["def"] for r in await tgt.fetch(q, schemas)}
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    checks.add("policies", len(a), len(b), not differ, [f"policy {k}" for k in differ[:NAMED]])


async def _grants(checks: Checks, src: asyncpg.Connection, tgt: asyncpg.Connection, schemas: list[str]) -> None:
    q = """select table_schema || '.' || table_name || ' ' || grantee || ' ' || privilege_type as g
           from information_schema.role_table_grants
           where table_schema = any($1::text[]) and grantee = any($2::text[]) and privilege_type <> 'MAINTAIN'
           union all
           select routine_schema || '.' || routine_name || ' ' || grantee || ' EXECUTE'
           from information_schema.role_routine_grants
           where routine_schema = any($1::text[]) and grantee = any($2::text[])"""
    a = {r["g"] for r in await src.fetch(q, schemas, list(REQUEST_ROLES))}
    b = {r["g"] for r in await tgt.fetch(q, schemas, list(REQUEST_ROLES))}
    differ = sorted((f"{g} only on source" for g in a - b)) + sorted(f"{g} only on target" for g in b - a)
    checks.add("grants", len(a), len(b), not differ, differ[:NAMED])

