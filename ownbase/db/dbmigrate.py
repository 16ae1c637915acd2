"""``ownbase db migrate``: apply an app's SQL migration folder the way the Supabase CLI does.

Files are ``<version>_<name>.sql`` (Supabase's ``supabase/migrations`` layout), applied in version
order, each in its own transaction, and recorded in ``supabase_migrations.schema_migrations``
with Supabase's columns (version, statements, name). A project migrated from Supabase keeps that
table, so what already ran there is skipped here. At the end a ``NOTIFY pgrst, 'reload schema'``
makes running servers reload their schema cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import asyncpg

FILE_PATTERN = re.compile(r"^([0-9]+)_(.*)\.sql$")
LOCK_KEY = 7_305_110_250  # advisory lock: two `db migrate` runs never interleave

_HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)

EMBEDDED_EXTENSIONS_NOTE = (
    "The embedded PostgreSQL that ownbase starts when OWNBASE_DATABASE_URL is not set ships without "
    "extensions such as pgcrypto, uuid-ossp and postgis."
)


@dataclass(frozen=True)
class AppMigration:
    version: str
    name: str
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass
class Plan:
    pending: list[AppMigration] = field(default_factory=list)
    already: list[AppMigration] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files not named <version>_<name>.sql


class MigrationFailed(Exception):
    def __init__(self, migration: AppMigration, message: str, *, extension: str | None = None) -> None:
        super().__init__(message)
        self.migration = migration
        self.message = message
        self.extension = extension


def discover(folder: Path) -> tuple[list[AppMigration], list[str]]:
    """The folder's migrations in version order, and the .sql files that do not fit the pattern."""
    found: list[AppMigration] = []
    ignored: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not path.name.endswith(".sql"):
            continue
        match = FILE_PATTERN.match(path.name)
        if match is None:
            ignored.append(path.name)
            continue
        found.append(AppMigration(match.group(1), match.group(2), path))
    found.sort(key=lambda m: (int(m.version), m.version, m.name))
    versions = [m.version for m in found]
    dupes = sorted({v for v in versions if versions.count(v) > 1})
    if dupes:
        raise ValueError(f"duplicate migration version(s) in {folder}: {', '.join(dupes)}")
    return found, ignored


def split_statements(sql: str) -> list[str]:
    """Split a SQL script into statements for the history record (quotes, $tags$, comments aware)."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    only_comments = True
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            end = n if end == -1 else end
            buf.append(sql[i:end])
            i = end
            continue
        if ch == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            buf.append(sql[i:j])
            i = j
            continue
        if ch in ("'", '"'):
            escape = ch == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while j < n:
                if escape and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(sql[i:j + 1])
            only_comments = False
            i = j + 1
            continue
        if ch == "$":
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if tag and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                marker = tag.group(0)
                end = sql.find(marker, i + len(marker))
                end = n if end == -1 else end + len(marker)
                buf.append(sql[i:end])
                only_comments = False
                i = end
                continue
        if ch == ";":
            buf.append(ch)
            text = "".join(buf).strip()
            if text and not only_comments:
                out.append(text)
            buf, only_comments = [], True
            i += 1
            continue
        if not ch.isspace():
            only_comments = False
        buf.append(ch)
        i += 1
    text = "".join(buf).strip()
    if text and not only_comments:
        out.append(text)
    return out


async def ensure_history(conn: asyncpg.Connection) -> None:
    for statement in _HISTORY_DDL:
        await conn.execute(statement)


async def plan(conn: asyncpg.Connection, folder: Path) -> Plan:
    migrations, ignored = discover(folder)
    await ensure_history(conn)
    done = {r["version"] for r in await conn.fetch("select version from supabase_migrations.schema_migrations")}
    result = Plan(ignored=ignored)
    for migration in migrations:
        (result.already if migration.version in done else result.pending).append(migration)
    return result


def _missing_extension(exc: asyncpg.PostgresError) -> str | None:
    """The extension a failed statement wanted, if the server lacks it."""
    text = f"{exc} {getattr(exc, 'detail', '') or ''}"
    state = getattr(exc, "sqlstate", "")
    if state not in ("0A000", "58P01", "42704") and "extension" not in text:
        return None
    match = re.search(r'extension "([^"]+)" is not available', text) \
        or re.search(r"extension control file \"[^\"]*/([^/\"]+)\.control\"", text) \
        or re.search(r'could not open extension control file ".*?([A-Za-z0-9_-]+)\.control"', text)
    return match.group(1) if match else None


async def apply(conn: asyncpg.Connection, migration: AppMigration) -> None:
    sql = migration.path.read_text(encoding="utf-8")
    statements = split_statements(sql)
    try:
        async with conn.transaction():
            if statements:
                await conn.execute(sql)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations(version, statements, name) values ($1, $2, $3)",
                migration.version, statements, migration.name,
            )
    except asyncpg.PostgresError as exc:
        detail = getattr(exc, "detail", None)
        message = f"{type(exc).__name__} ({getattr(exc, 'sqlstate', '?')}): {exc}"
        if detail:
            message += f"\nDETAIL: {detail}"
        raise MigrationFailed(migration, message, extension=_missing_extension(exc)) from None


async def migrate(conn: asyncpg.Connection, folder: Path, *,
                  on_apply: Callable[[AppMigration], None] | None = None) -> Plan:
    """Apply pending migrations in order; stop at the first failure (it is rolled back)."""
    await conn.execute("select pg_advisory_lock($1)", LOCK_KEY)
    try:
        result = await plan(conn, folder)
        for migration in result.pending:
            if on_apply is not None:
                on_apply(migration)
            await apply(conn, migration)
        await conn.execute("notify pgrst, 'reload schema'")
        return result
    finally:
        await conn.execute("select pg_advisory_unlock($1)", LOCK_KEY)


def extension_help(extension: str, embedded: bool) -> str:
    lines = [f'The migration needs the PostgreSQL extension "{extension}", which this database server does not have.']
    if embedded:
        lines.append(EMBEDDED_EXTENSIONS_NOTE)
    lines += [
        "Point ownbase at a full PostgreSQL server that has it, for example:",
        "  export OWNBASE_DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME",
        "  ownbase db migrate",
        "(Amazon RDS / Aurora PostgreSQL and the official postgres images include pgcrypto and uuid-ossp; "
        "postgis needs e.g. the postgis/postgis image.)",
    ]
    return "\n".join(lines)
