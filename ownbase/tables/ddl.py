"""DDL of dynamic tables, run on the owner connection after spec.py validated everything.

Nothing here pastes request text into SQL: identifiers passed spec.IDENT and are quoted anyway,
types are fixed SQL names from spec.BASE_TYPES, expression defaults come from a fixed allow list
and value defaults are quoted as literals by PostgreSQL itself (``format('%L')``) and cast to the
column type.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ownbase.db.sql import quote_ident, quote_qualified
from ownbase.tables.spec import BASE_TYPES, ColumnSpec, TableSpec

# The only SQL expressions a default may be (keys are what spec.py accepts).
_EXPRESSIONS = {
    "gen_random_uuid()": "gen_random_uuid()",
    "auth.uid()": "auth.uid()",
    "now()": "now()",
    "current_date": "current_date",
}


def _as_text(base: str, value: Any) -> str:
    if base in ("json", "jsonb"):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _literal(conn: asyncpg.Connection, text: str) -> str:
    quoted = await conn.fetchval("select format('%L', $1::text)", text)
    assert isinstance(quoted, str)
    return quoted


async def default_sql(conn: asyncpg.Connection, col: ColumnSpec) -> str:
    if col.default_is_expression:
        return _EXPRESSIONS[str(col.default)]
    base_sql = BASE_TYPES[col.base]
    if col.is_array:
        items = []
        for item in col.default:
            items.append("null" if item is None else await _literal(conn, _as_text(col.base, item)))
        if not items:
            return f"'{{}}'::{base_sql}[]"
        return f"array[{', '.join(items)}]::{base_sql}[]"
    return f"{await _literal(conn, _as_text(col.base, col.default))}::{base_sql}"


async def column_sql(conn: asyncpg.Connection, schema: str, col: ColumnSpec) -> str:
    parts = [quote_ident(col.name), col.sql_type]
    if not col.nullable:
        parts.append("not null")
    if col.has_default:
        parts.append("default " + await default_sql(conn, col))
    if col.unique:
        parts.append("unique")
    if col.references:
        parts.append(f"references {quote_qualified(schema, col.references)}({quote_ident('id')})")
    return " ".join(parts)


async def create_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"create schema {quote_ident(schema)}")
    # The request roles may use what is in it; each table's RLS policies decide about rows.
    await conn.execute(f"grant usage on schema {quote_ident(schema)} to authenticated, service_role")


async def create_table(conn: asyncpg.Connection, schema: str, table: TableSpec) -> None:
    name = quote_qualified(schema, table.name)
    lines = [
        f"{quote_ident('id')} uuid primary key default gen_random_uuid()",
        f"{quote_ident('owner_id')} uuid default auth.uid()",
        f"{quote_ident('created_at')} timestamptz not null default now()",
        f"{quote_ident('updated_at')} timestamptz not null default now()",
    ]
    for col in table.columns:
        lines.append(await column_sql(conn, schema, col))
    await conn.execute(f"create table {name} (\n  " + ",\n  ".join(lines) + "\n)")
    await conn.execute(f"create index on {name} ({quote_ident('owner_id')})")
    await conn.execute(
        f"create trigger {quote_ident('ownbase_touch_updated_at')} before update on {name} "
        "for each row execute function ownbase.dynamic_touch_updated_at()"
    )
    await conn.execute(f"alter table {name} enable row level security")
    await conn.execute(f"grant select, insert, update, delete on {name} to authenticated, service_role")
    # Rows are visible and writable only by their owner; the service role may act for anyone
    # (explicitly, because managed servers may not give service_role BYPASSRLS).
    await conn.execute(
        f"create policy {quote_ident('owner_all')} on {name} for all to authenticated "
        "using (owner_id = auth.uid()) with check (owner_id = auth.uid())"
    )
    await conn.execute(
        f"create policy {quote_ident('service_role_all')} on {name} for all to service_role "
        "using (true) with check (true)"
    )


async def drop_table(conn: asyncpg.Connection, schema: str, table: str) -> None:
    await conn.execute(f"drop table {quote_qualified(schema, table)}")


async def notify_reload(conn: asyncpg.Connection) -> None:
    """Tell every ownbase process (and a PostgREST, if any) to reload its schema cache on commit."""
    await conn.execute("notify pgrst, 'reload schema'")
