"""Connections to the source (a Supabase project) and the target (ownbase's database).

Both sessions render values the same way (UTC, ISO dates, exact floats) so row checksums compare
across servers of different major versions, and run without a statement timeout (Supabase roles
carry one that a long COPY would hit).
"""

from __future__ import annotations

import asyncpg

from ownbase.migrate.progress import StepError

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
    transaction only (``ALTER TABLE`` is transactional, other sessions never see them off). Only
    tables that have user triggers are altered: ``ALTER TABLE`` needs ownership, and a role that is
    not a superuser (Supabase's ``postgres``) may write into tables it does not own.
    Returns the method used, for the report.
    """
    try:
        async with conn.transaction():  # savepoint: a refused SET must not abort the caller's tx
            await conn.execute("set local session_replication_role = replica")
        return "session_replication_role"
    except asyncpg.PostgresError:
        pass
    triggered = await _with_user_triggers(conn, tables)
    foreign = [r for r in triggered if not r["owned"]]
    if foreign:
        who = await conn.fetchval("select current_user")
        raise StepError("; ".join(
            f"{r['tbl']} has triggers ({r['triggers']}) that must not fire for copied rows, but {who} may not"
            f" set session_replication_role (superusers, or roles granted SET on it) nor disable them (only the owner, {r['owner']},"
            " may)" for r in foreign)
            + f". Make {who} the owner (ALTER TABLE ... OWNER TO {who}, run by the owner or a superuser; on"
              " Supabase, by support), or connect as the owner or a superuser.")
    for r in triggered:
        await conn.execute(f"alter table {r['tbl']} disable trigger user")
    return "disable trigger user"


async def _with_user_triggers(conn: asyncpg.Connection, tables: list[str]) -> list[asyncpg.Record]:
    """Of ``tables`` (qualified names), those with user triggers: name, owner, whether we own it."""
    rows = await conn.fetch(
        """select c.oid::regclass::text as tbl, pg_get_userbyid(c.relowner) as owner, pg_has_role(c.relowner, 'usage') as owned,
                  (select string_agg(g.tgname, ', ' order by g.tgname) from pg_trigger g
                   where g.tgrelid = c.oid and not g.tgisinternal) as triggers
           from unnest($1::text[]) with ordinality as t(name, i) join pg_class c on c.oid = t.name::regclass
           order by t.i""", tables)
    return [r for r in rows if r["triggers"]]


async def restore_triggers(conn: asyncpg.Connection, method: str, tables: list[str]) -> None:
    if method == "disable trigger user":
        for r in await _with_user_triggers(conn, tables):
            await conn.execute(f"alter table {r['tbl']} enable trigger user")


def qliteral(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
