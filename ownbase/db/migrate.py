"""ownbase's own versioned SQL migrations (``ownbase/db/migrations/NNNN_name.sql``).

Each file runs once, in its own transaction, recorded in ``ownbase.migrations``; an advisory lock
keeps several starting processes from racing. The files are written idempotently as well, so a
half-recorded state never breaks a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

LOCK_KEY = 7_305_110_017  # arbitrary, stable advisory-lock id for ownbase migrations


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    folder = resources.files("ownbase.db") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def ensure_authenticator(conn: asyncpg.Connection, role: str, password: str) -> None:
    """Create/refresh the API's login role; it may only switch into the request roles."""
    exists = await conn.fetchval("select 1 from pg_roles where rolname = $1", role)
    verb = "alter" if exists else "create"
    sql = await conn.fetchval(
        "select format('" + verb + " role %I login noinherit password %L', $1::text, $2::text)",
        role,
        password,
    )
    await conn.execute(sql)
    grant = await conn.fetchval(
        "select format('grant anon, authenticated, service_role to %I', $1::text)", role
    )
    await conn.execute(grant)
    # The one-round-trip read path (ownbase.scoped_read, and its prepared form) is the
    # authenticator's alone.
    for stmt in ("grant usage on schema ownbase to %I",
                 "grant execute on function ownbase.scoped_read(text[], text, text[]) to %I",
                 "grant execute on function ownbase.scoped_read_prepared(text[], text, text, text[], text) to %I"):
        await conn.execute(await conn.fetchval(f"select format('{stmt}', $1::text)", role))
    # The owner must also be able to switch roles, e.g. for `db migrate` scripts and tests.
    try:
        await conn.execute("grant anon, authenticated, service_role to current_user")
    except asyncpg.PostgresError:
        pass


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply pending bundled migrations; return the versions applied now."""
    applied_now: list[str] = []
    await conn.execute("select pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute("create schema if not exists ownbase")
        await conn.execute(
            """create table if not exists ownbase.migrations (
                 version text primary key,
                 name text not null,
                 checksum text not null,
                 applied_at timestamptz not null default now())"""
        )
        done = {r["version"] for r in await conn.fetch("select version from ownbase.migrations")}
        for migration in bundled_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "insert into ownbase.migrations(version, name, checksum) values ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.version)
    finally:
        await conn.execute("select pg_advisory_unlock($1)", LOCK_KEY)
    return applied_now
