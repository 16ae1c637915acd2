"""Connections to the source (a Supabase project) and the target (ownbase's database).

Both sessions render values the same way (UTC, ISO dates, exact floats) so row checksums compare
across servers of different major versions, and run without a statement timeout (Supabase roles
carry one that a long COPY would hit).
"""

from __future__ import annotations

import asyncpg

SESSION_SETUP = (
    "set search_path = pg_catalog; set timezone = 'UTC'; set datestyle = 'ISO, YMD';"
    " set intervalstyle = 'postgres'; set extra_float_digits = 3; set statement_timeout = 0;"
    " set lock_timeout = 0; set bytea_output = 'hex'"
)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url, statement_cache_size=0)
    await conn.execute(SESSION_SETUP)
    return conn


async def server_major(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("select current_setting('server_version_num')::int")) // 10000


async def is_superuser(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("select rolsuper from pg_roles where rolname = current_user"))


async def quiet_triggers(conn: asyncpg.Connection, tables: list[str]) -> str:
    """Inside a transaction: make sure no user trigger fires while migrated rows are written.

    ``session_replication_role = replica`` (superusers, or roles granted SET on it) skips user
    triggers and foreign-key checks; otherwise the user triggers of each table are disabled for this
    transaction only (``ALTER TABLE`` is transactional, other sessions never see them off).
    Returns the method used, for the report.
    """
    try:
        async with conn.transaction():  # savepoint: a refused SET must not abort the caller's tx
            await conn.execute("set local session_replication_role = replica")
        return "session_replication_role"
    except asyncpg.PostgresError:
        for table in tables:
            await conn.execute(f"alter table {table} disable trigger user")
        return "disable trigger user"


async def restore_triggers(conn: asyncpg.Connection, method: str, tables: list[str]) -> None:
    if method == "disable trigger user":
        for table in tables:
            await conn.execute(f"alter table {table} enable trigger user")


def qliteral(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
