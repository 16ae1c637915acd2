"""Who owns which dynamic database, and the stored column spec of each table (owner pool)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from ownbase.http.auth_context import AuthContext
from ownbase.tables import errors
from ownbase.tables.spec import ColumnSpec, TableSpec


def _uuid_or_none(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Caller:
    """The resolved caller of /db/v1: a user (by id) or the service role."""

    user_id: str | None
    is_service: bool

    @classmethod
    def from_auth(cls, auth: AuthContext) -> "Caller":
        user_id = _uuid_or_none(auth.user_id)
        if auth.is_service:
            return cls(user_id=user_id, is_service=True)
        if auth.role != "authenticated":
            raise errors.signed_in_required()
        if user_id is None:
            raise errors.no_subject()
        return cls(user_id=user_id, is_service=False)

    def may_use(self, owner_id: Any) -> bool:
        return self.is_service or (owner_id is not None and str(owner_id) == self.user_id)


async def lock_database(conn: asyncpg.Connection, database_id: str) -> None:
    """Serialise create/drop within one database (the first creator must win exactly once)."""
    await conn.execute("select pg_advisory_xact_lock(hashtext('ownbase.dynamic:' || $1))", database_id)


async def owner_of(conn: asyncpg.Connection | asyncpg.Pool, database_id: str) -> tuple[bool, Any]:
    row = await conn.fetchrow("select owner_id from ownbase.dynamic_databases where id = $1", database_id)
    return (row is not None, row["owner_id"] if row else None)


async def schema_of(conn: asyncpg.Connection | asyncpg.Pool, database_id: str) -> str | None:
    """The PostgreSQL schema holding a registered database's tables."""
    value = await conn.fetchval("select schema_name from ownbase.dynamic_databases where id = $1", database_id)
    return str(value) if value is not None else None


async def schema_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("select exists(select 1 from pg_namespace where nspname = $1)", name))


async def count_databases(conn: asyncpg.Connection, caller: Caller) -> int:
    return int(await conn.fetchval("select count(*) from ownbase.dynamic_databases where owner_id = $1::uuid",
                                   caller.user_id))


async def register_database(conn: asyncpg.Connection, database_id: str, schema: str, caller: Caller) -> None:
    owner = None if caller.is_service else caller.user_id
    await conn.execute("insert into ownbase.dynamic_databases(id, owner_id, schema_name) values ($1, $2::uuid, $3)",
                       database_id, owner, schema)


async def check_access(conn: asyncpg.Connection | asyncpg.Pool, database_id: str, caller: Caller) -> None:
    found, owner = await owner_of(conn, database_id)
    if not found:
        raise errors.database_not_found(database_id)
    if not caller.may_use(owner):
        raise errors.not_owner(database_id)


def _spec(name: str, columns: Any) -> TableSpec:
    return TableSpec(name=name, columns=tuple(ColumnSpec.from_json(c) for c in columns))


# Row requests look up the table's owner and spec on every call; a short-lived per-process cache
# saves that round trip. Owners never change; a spec only changes when a table is dropped and
# created again, and a stale spec is corrected by a fresh lookup before any 400 (see service.rows).
SPEC_TTL_SECONDS = 2.0
SPEC_CACHE_MAX = 10_000


async def table_spec(ctx: Any, database_id: str, table: str, caller: Caller, *,
                     fresh: bool = False) -> tuple[TableSpec, bool, str]:
    """Access check and spec of one table; returns (spec, came_from_cache, schema)."""
    cache: dict[tuple[str, str], tuple[float, Any, Any, str]] = \
        ctx.state.setdefault("tables", {}).setdefault("specs", {})
    key = (database_id, table)
    now = time.monotonic()
    hit = None if fresh else cache.get(key)
    if hit is not None and hit[0] > now:
        _, owner, columns, schema = hit
        cached = True
    else:
        row = await ctx.db.owner.fetchrow(
            """select d.owner_id, d.schema_name, t.columns
                 from ownbase.dynamic_databases d
                 left join ownbase.dynamic_tables t on t.database_id = d.id and t.name = $2
                where d.id = $1""",
            database_id, table,
        )
        if row is None:
            raise errors.database_not_found(database_id)
        owner, columns, schema = row["owner_id"], row["columns"], row["schema_name"]
        cached = False
        if columns is not None:  # only found tables are cached: a new table is seen at once
            if len(cache) >= SPEC_CACHE_MAX:
                cache.clear()
            cache[key] = (now + SPEC_TTL_SECONDS, owner, columns, schema)
    if not caller.may_use(owner):
        raise errors.not_owner(database_id)
    if columns is None:
        raise errors.table_not_found(database_id, table)
    return _spec(table, columns), cached, schema


def forget_cached(ctx: Any, database_id: str, table: str) -> None:
    ctx.state.setdefault("tables", {}).setdefault("specs", {}).pop((database_id, table), None)


async def list_tables(conn: asyncpg.Connection | asyncpg.Pool, database_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "select name, columns, created_at from ownbase.dynamic_tables where database_id = $1 order by name",
        database_id,
    ))


async def get_table(conn: asyncpg.Connection | asyncpg.Pool, database_id: str, table: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "select name, columns, created_at from ownbase.dynamic_tables where database_id = $1 and name = $2",
        database_id, table,
    )


async def save_table(conn: asyncpg.Connection, database_id: str, table: TableSpec, caller: Caller) -> asyncpg.Record:
    return await conn.fetchrow(
        """insert into ownbase.dynamic_tables(database_id, name, columns, created_by)
           values ($1, $2, $3::jsonb, $4::uuid) returning name, columns, created_at""",
        database_id, table.name, [c.to_json() for c in table.columns], caller.user_id,
    )


async def forget_table(conn: asyncpg.Connection, database_id: str, table: str) -> None:
    await conn.execute("delete from ownbase.dynamic_tables where database_id = $1 and name = $2", database_id, table)


async def list_databases(pool: asyncpg.Pool, caller: Caller) -> list[asyncpg.Record]:
    if caller.is_service:
        return list(await pool.fetch(
            "select id, owner_id, schema_name, created_at from ownbase.dynamic_databases order by id"))
    return list(await pool.fetch(
        "select id, owner_id, schema_name, created_at from ownbase.dynamic_databases where owner_id = $1::uuid"
        " order by id",
        caller.user_id))
