"""Extensions of the source: which the target has, which get a core stand-in, which need a decision."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from ownbase.db.sql import quote_qualified

# Supabase installs these on every project; with nothing of the app depending on them they move
# as a note, not a refusal.
PLATFORM_DEFAULTS = frozenset({"plpgsql", "pg_stat_statements", "pg_graphql", "pgjwt", "pgsodium",
                               "supabase_vault"})
# Supabase features that may be present as plain schemas (or real extensions): name -> (schema, data table)
PSEUDO = {"supabase_vault": ("vault", "secrets"), "pg_cron": ("cron", "job"), "pg_net": ("net", None),
          "pg_graphql": ("graphql", None), "pgsodium": ("pgsodium", None)}
# What PostgreSQL's core can stand in for (schema extensions, like Supabase).
STAND_INS = {
    "uuid-ossp": ["uuid_generate_v4()"],
    "pgcrypto": ["gen_random_bytes(integer)", "digest(bytea, text)", "digest(text, text)"],
}

STAND_IN_SQL = """
create schema if not exists extensions;
create or replace function extensions.uuid_generate_v4() returns uuid
  language sql volatile parallel safe as 'select pg_catalog.gen_random_uuid()';
-- 13 strong random bytes per v4 UUID (the version and variant bytes are left out).
create or replace function extensions.gen_random_bytes(n integer) returns bytea
  language sql volatile parallel safe as $$
  select substring(pg_catalog.string_agg(
           substring(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) from 1 for 6)
           || substring(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) from 10 for 7), ''::bytea)
         from 1 for n)
  from pg_catalog.generate_series(1, (n + 12) / 13)
$$;
create or replace function extensions.digest(data bytea, kind text) returns bytea
  language plpgsql immutable parallel safe as $$
begin
  case pg_catalog.lower(kind)
    when 'md5' then return pg_catalog.decode(pg_catalog.md5(data), 'hex');
    when 'sha224' then return pg_catalog.sha224(data);
    when 'sha256' then return pg_catalog.sha256(data);
    when 'sha384' then return pg_catalog.sha384(data);
    when 'sha512' then return pg_catalog.sha512(data);
    else raise exception 'digest stand-in: unsupported algorithm %', kind using errcode = '22023';
  end case;
end $$;
create or replace function extensions.digest(data text, kind text) returns bytea
  language sql immutable parallel safe as
  'select extensions.digest(pg_catalog.convert_to(data, ''UTF8''), kind)';
grant usage on schema extensions to anon, authenticated, service_role;
grant execute on all functions in schema extensions to anon, authenticated, service_role;
"""


@dataclass
class Extension:
    name: str
    schema: str
    installed: bool  # a real extension on the source (else a Supabase schema stand-in)
    on_target: str = "unknown"  # available | missing | unknown
    action: str = ""  # create | stand-in | skip | refuse | note
    dependents: list[str] = field(default_factory=list)
    data_rows: int = 0


async def source_extensions(conn: asyncpg.Connection, app_schemas: list[str]) -> list[Extension]:
    out: list[Extension] = []
    for r in await conn.fetch(
            "select e.extname, n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
            " order by 1"):
        out.append(Extension(r["extname"], r["nspname"], True))
    names = {e.name for e in out}
    schemas = {r["nspname"] for r in await conn.fetch("select nspname from pg_namespace")}
    for name, (schema, _) in PSEUDO.items():
        if name not in names and schema in schemas:
            out.append(Extension(name, schema, False))
    for ext in out:
        ext.dependents = await _dependents(conn, ext, app_schemas)
        table = PSEUDO.get(ext.name, (None, None))[1]
        if table:
            try:
                ext.data_rows = int(await conn.fetchval(f"select count(*) from {quote_qualified(ext.schema, table)}"))
            except asyncpg.PostgresError:
                ext.data_rows = -1  # not readable by this role: still needs a decision
    return out


async def _dependents(conn: asyncpg.Connection, ext: Extension, app_schemas: list[str]) -> list[str]:
    """App objects (functions, column defaults, policies, cron jobs) that use the extension."""
    if ext.installed:
        funcs = [r["proname"] for r in await conn.fetch(
            """select distinct p.proname from pg_depend d join pg_proc p on p.oid = d.objid
               join pg_extension e on e.oid = d.refobjid
               where d.classid = 'pg_proc'::regclass and d.deptype = 'e' and e.extname = $1""", ext.name)]
    else:
        funcs = [r["proname"] for r in await conn.fetch(
            "select distinct p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = $1", ext.schema)]
    if not funcs:
        return []
    patterns = [f"{f}(" for f in funcs] + ([f"{ext.schema}."] if ext.schema not in ("public", "extensions") else [])
    found: list[str] = []
    for r in await conn.fetch(
            """select 'function ' || n.nspname || '.' || p.proname as what, p.prosrc as body
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace
               where n.nspname = any($1::text[]) and p.prokind in ('f', 'p')
                 and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
               union all
               select 'default ' || n.nspname || '.' || c.relname || '.' || a.attname,
                      pg_get_expr(ad.adbin, ad.adrelid)
               from pg_attrdef ad join pg_class c on c.oid = ad.adrelid
               join pg_namespace n on n.oid = c.relnamespace
               join pg_attribute a on a.attrelid = ad.adrelid and a.attnum = ad.adnum
               where n.nspname = any($1::text[])
               union all
               select 'policy ' || schemaname || '.' || tablename || ' ' || policyname,
                      coalesce(qual, '') || ' ' || coalesce(with_check, '')
               from pg_policies where schemaname = any($1::text[]) or schemaname = 'storage'""", app_schemas):
        body = r["body"] or ""
        if any(p in body for p in patterns):
            found.append(r["what"])
    if ext.name == "pg_cron" and not ext.installed:
        try:
            found += [f"cron job {r['jobname']}" for r in await conn.fetch("select jobname from cron.job")]
        except asyncpg.PostgresError:
            pass
    return found


async def decide(exts: list[Extension], target: asyncpg.Connection | None, skip: set[str]) -> None:
    available: set[str] | None = None
    if target is not None:
        available = {r["name"] for r in await target.fetch("select name from pg_available_extensions")}
    for ext in exts:
        if ext.name == "plpgsql":
            ext.on_target, ext.action = "available", "note"
            continue
        if available is not None:
            ext.on_target = "available" if ext.installed and ext.name in available else "missing"
        if ext.name in PLATFORM_DEFAULTS and not ext.dependents and ext.data_rows == 0:
            ext.action = "note"
        elif ext.on_target == "available":
            ext.action = "create"
        elif ext.name in STAND_INS:
            ext.action = "stand-in"
        elif ext.name in skip:
            ext.action = "skip"
        else:
            ext.action = "refuse"
