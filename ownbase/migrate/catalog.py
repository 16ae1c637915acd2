"""Catalog reads shared by the steps: which schemas are the app's, its tables, columns and order."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from ownbase.db.sql import quote_qualified

# Schemas Supabase's platform manages (the app's objects inside them are handled one by one).
MANAGED_SCHEMAS = frozenset({
    "auth", "storage", "realtime", "vault", "pgsodium", "pgsodium_masks", "graphql", "graphql_public",
    "net", "cron", "extensions", "pgbouncer", "pgtle", "supabase_functions", "supabase_migrations",
    "_realtime", "_analytics", "information_schema", "ownbase", "tiger", "tiger_data", "topology",
})
MANAGED_PREFIXES = ("pg_", "supabase_", "graphql", "ownbase_")  # ownbase_*: its own (bridge, dashboard)


def is_managed(schema: str) -> bool:
    return schema in MANAGED_SCHEMAS or schema.startswith(MANAGED_PREFIXES)


@dataclass
class Column:
    name: str
    type: str
    generated: bool
    binary_safe: bool


@dataclass
class Table:
    schema: str
    name: str
    kind: str  # r (table) or p (partitioned)
    est_rows: int
    bytes: int
    columns: list[Column] = field(default_factory=list)
    depends_on: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def qualified(self) -> str:
        return quote_qualified(self.schema, self.name)

    @property
    def copy_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.generated]


async def app_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        """select n.nspname from pg_namespace n
           where not exists (select 1 from pg_depend d where d.classid = 'pg_namespace'::regclass
                             and d.objid = n.oid and d.deptype = 'e')
           order by 1""")
    return [r["nspname"] for r in rows if not is_managed(r["nspname"])]


async def tables(conn: asyncpg.Connection, schemas: list[str]) -> list[Table]:
    rows = await conn.fetch(
        """select n.nspname, c.relname, c.relkind, greatest(c.reltuples, 0)::bigint as est,
                  pg_total_relation_size(c.oid) as bytes, c.oid
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') and not c.relispartition
             and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                             and d.objid = c.oid and d.deptype = 'e')
           order by 1, 2""", schemas)
    out: dict[int, Table] = {}
    for r in rows:
        out[r["oid"]] = Table(r["nspname"], r["relname"], r["relkind"], r["est"], r["bytes"])
    if not out:
        return []
    cols = await conn.fetch(
        """select a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod) as type,
                  a.attgenerated <> '' as generated,
                  (coalesce(bt.typtype, t.typtype) = 'e'
                   or (coalesce(bt.oid, t.oid) < 16384 and coalesce(bt.typelem, t.typelem) < 16384)) as binary_safe
           from pg_attribute a join pg_type t on t.oid = a.atttypid
           left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
           where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
           order by a.attrelid, a.attnum""", list(out))
    for c in cols:
        out[c["attrelid"]].columns.append(Column(c["attname"], c["type"], c["generated"], c["binary_safe"]))
    fks = await conn.fetch(
        """select conrelid, confrelid from pg_constraint
           where contype = 'f' and conrelid = any($1::oid[]) and confrelid = any($1::oid[])
             and conrelid <> confrelid""", list(out))
    for fk in fks:
        out[fk["conrelid"]].depends_on.add(out[fk["confrelid"]].key)
    return list(out.values())


def levels(items: list[Table]) -> list[list[Table]]:
    """Group tables so every table comes after the tables its foreign keys point at.

    Cycles (rare) land together in a last level; they load with triggers off or fail clearly.
    """
    remaining = {t.key: t for t in items}
    done: set[str] = set()
    out: list[list[Table]] = []
    while remaining:
        ready = [t for t in remaining.values() if not (t.depends_on - done)]
        if not ready:
            out.append(list(remaining.values()))
            break
        out.append(ready)
        for t in ready:
            done.add(t.key)
            del remaining[t.key]
    return out


async def sequences(conn: asyncpg.Connection, schemas: list[str]) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "select schemaname, sequencename, last_value from pg_sequences where schemaname = any($1::text[])"
        " order by 1, 2", schemas))


async def matviews(conn: asyncpg.Connection, schemas: list[str]) -> list[str]:
    rows = await conn.fetch(
        "select schemaname, matviewname from pg_matviews where schemaname = any($1::text[]) order by 1, 2",
        schemas)
    return [quote_qualified(r["schemaname"], r["matviewname"]) for r in rows]


async def relation_exists(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    return bool(await conn.fetchval(
        "select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = $1 and c.relname = $2)", schema, name))


async def column_names(conn: asyncpg.Connection, schema: str, table: str) -> dict[str, bool]:
    """Column name -> generated, in column order."""
    rows = await conn.fetch(
        """select a.attname, a.attgenerated <> '' as gen from pg_attribute a
           join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
           order by a.attnum""", schema, table)
    return {r["attname"]: r["gen"] for r in rows}
