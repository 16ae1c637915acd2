"""The dynamic-table API's logic: DDL and bookkeeping on the owner pool, rows through the REST engine.

Table DDL never runs as the caller: the request roles cannot create anything. It runs on the
owner connection after ownership checks and spec validation, in one transaction together with
the registry rows, so a failure leaves neither a half-created table nor a stale registry entry.
Row requests are validated against the stored spec and then handed to the same engine that
serves /rest/v1 (``schema=ownbase_db_<database_id>``), inside the request scope, so RLS decides.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Mapping, Sequence

import asyncpg
from starlette.responses import Response

from ownbase.context import Context
from ownbase.http.auth_context import AuthContext
from ownbase.tables import ddl, errors, registry
from ownbase.tables.registry import Caller
from ownbase.tables.rows import check_insert, check_update
from ownbase.tables.spec import TableSpec, check_database_id, check_identifier, describe, parse_table, schema_for

log = logging.getLogger("ownbase.tables")

# Schema-cache errors that a reload may cure: unknown table, column or relationship.
_STALE_CODES = frozenset({"PGRST204", "PGRST200", "42P01", "42703"})

# Request headers that would let a caller pick another schema than the one in the path.
_DROP_HEADERS = frozenset({"accept-profile", "content-profile"})


def _table_json(database_id: str, record: asyncpg.Record) -> dict[str, Any]:
    spec = TableSpec(name=record["name"], columns=())
    keys = ("name", "type", "nullable", "default", "unique", "references", "primary_key", "system")
    # jsonb does not keep key order: list every column's keys in one fixed order.
    columns = describe(spec) + [{k: c.get(k) for k in keys} for c in record["columns"]]
    created = record["created_at"]
    return {"name": record["name"], "database_id": database_id, "columns": columns,
            "created_at": created.isoformat() if created is not None else None}


async def _reload_engine(ctx: Context) -> None:
    """Make this process's schema cache see the DDL now (others follow the NOTIFY)."""
    try:
        from ownbase.rest import engine  # the /rest/v1 engine, owned by the rest service
    except ImportError:
        return
    reload = getattr(engine, "reload_schema", None)
    if reload is not None:
        try:
            await reload(ctx)
        except Exception:  # noqa: BLE001 - the NOTIFY still reaches the listener
            log.exception("schema reload after dynamic-table DDL failed")


def _pg_to_error(exc: asyncpg.PostgresError, database_id: str, table: str) -> errors.ApiError:
    state = getattr(exc, "sqlstate", "") or ""
    if state == "42P07":
        return errors.table_exists(database_id, table)
    if state == "2BP01":
        return errors.table_in_use(table, getattr(exc, "detail", None))
    if state in ("22P02", "22007", "22008", "22003", "42804", "22023"):
        return errors.from_postgres(state, str(exc), getattr(exc, "detail", None))
    raise exc


# --- databases and tables -------------------------------------------------------------------------

async def list_databases(ctx: Context, caller: Caller) -> list[dict[str, Any]]:
    rows = await registry.list_databases(ctx.db.owner, caller)
    return [{"id": r["id"], "owner_id": str(r["owner_id"]) if r["owner_id"] else None,
             "schema": r["schema_name"], "created_at": r["created_at"].isoformat()} for r in rows]


async def create_table(ctx: Context, caller: Caller, database_id: str, body: Any) -> dict[str, Any]:
    check_database_id(database_id)
    table = parse_table(body)
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            await registry.lock_database(conn, database_id)
            found, owner = await registry.owner_of(conn, database_id)
            limits = ctx.settings
            if not found:
                schema = schema_for(database_id)
                if await registry.schema_exists(conn, schema):
                    raise errors.not_dynamic(database_id)  # made by hand in our namespace: not ours
                cap = limits.tables_max_databases_per_user
                if cap and not caller.is_service and await registry.count_databases(conn, caller) >= cap:
                    raise errors.quota(f"you already own {cap} databases (OWNBASE_TABLES_MAX_DATABASES_PER_USER)")
                await ddl.create_schema(conn, schema)
                await registry.register_database(conn, database_id, schema, caller)
            elif not caller.may_use(owner):
                raise errors.not_owner(database_id)
            else:
                schema = await registry.schema_of(conn, database_id) or schema_for(database_id)
            if await registry.get_table(conn, database_id, table.name) is not None:
                raise errors.table_exists(database_id, table.name)
            names = {r["name"] for r in await registry.list_tables(conn, database_id)}
            cap = limits.tables_max_tables_per_database
            if cap and not caller.is_service and len(names) >= cap:
                raise errors.quota(f"database '{database_id}' already has {cap} tables "
                                   "(OWNBASE_TABLES_MAX_TABLES_PER_DATABASE)")
            existing = names | {table.name}
            for col in table.columns:
                if col.references is not None and col.references not in existing:
                    raise errors.invalid_spec(
                        f"column '{col.name}' references '{col.references}', which is not a table of "
                        f"database '{database_id}'", f"columns.{col.name}.references")
            try:
                async with conn.transaction():  # savepoint: map PostgreSQL's verdict to a 4xx
                    await ddl.create_table(conn, schema, table)
            except asyncpg.PostgresError as exc:
                raise _pg_to_error(exc, database_id, table.name) from None
            record = await registry.save_table(conn, database_id, table, caller)
            await ddl.notify_reload(conn)
    registry.forget_cached(ctx, database_id, table.name)
    await _reload_engine(ctx)
    return _table_json(database_id, record)


async def list_tables(ctx: Context, caller: Caller, database_id: str) -> list[dict[str, Any]]:
    check_database_id(database_id)
    await registry.check_access(ctx.db.owner, database_id, caller)
    return [_table_json(database_id, r) for r in await registry.list_tables(ctx.db.owner, database_id)]


async def get_table(ctx: Context, caller: Caller, database_id: str, table: str) -> dict[str, Any]:
    check_database_id(database_id)
    check_identifier(table, "table name")
    await registry.check_access(ctx.db.owner, database_id, caller)
    record = await registry.get_table(ctx.db.owner, database_id, table)
    if record is None:
        raise errors.table_not_found(database_id, table)
    return _table_json(database_id, record)


async def drop_table(ctx: Context, caller: Caller, database_id: str, table: str) -> None:
    check_database_id(database_id)
    check_identifier(table, "table name")
    async with ctx.db.owner.acquire() as conn:
        async with conn.transaction():
            await registry.lock_database(conn, database_id)
            await registry.check_access(conn, database_id, caller)
            if await registry.get_table(conn, database_id, table) is None:
                raise errors.table_not_found(database_id, table)
            schema = await registry.schema_of(conn, database_id) or schema_for(database_id)
            try:
                async with conn.transaction():
                    await ddl.drop_table(conn, schema, table)
            except asyncpg.PostgresError as exc:
                raise _pg_to_error(exc, database_id, table) from None
            await registry.forget_table(conn, database_id, table)
            await ddl.notify_reload(conn)
    registry.forget_cached(ctx, database_id, table)
    await _reload_engine(ctx)


# --- rows -----------------------------------------------------------------------------------------

def _prefer_representation(headers: dict[str, str]) -> None:
    """Unlike /rest/v1, row writes answer with the rows unless the caller chose a `return=`."""
    prefer = headers.get("prefer", "")
    if "return=" not in prefer:
        headers["prefer"] = (prefer + ", " if prefer.strip() else "") + "return=representation"


def _bulk_columns(data: list[Any], query: list[tuple[str, str]]) -> None:
    """Rows of one insert may name different columns here (PostgREST itself wants identical keys
    unless `columns` is given, as supabase-js does)."""
    names: dict[str, None] = {}
    for row in data:
        names.update(dict.fromkeys(row))
    if names:
        query.append(("columns", ",".join(names)))


def _prefer_missing_default(headers: dict[str, str]) -> None:
    """A column a row leaves out takes the default declared in the table spec (PostgREST's own
    default is NULL for bulk inserts); an explicit `missing=` preference wins."""
    prefer = headers.get("prefer", "")
    if "missing=" not in prefer:
        headers["prefer"] = (prefer + ", " if prefer.strip() else "") + "missing=default"


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_body() from None


async def rows(
    ctx: Context,
    auth: AuthContext,
    *,
    method: str,
    database_id: str,
    table: str,
    row_id: str | None,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    check_database_id(database_id)
    check_identifier(table, "table name")
    caller = Caller.from_auth(auth)
    if row_id is not None:
        try:
            row_id = str(uuid.UUID(row_id))
        except ValueError:
            raise errors.invalid_row_id(row_id) from None
    spec, cached, schema = await registry.table_spec(ctx, database_id, table, caller)

    out_headers = {k.lower(): v for k, v in headers.items() if k.lower() not in _DROP_HEADERS}
    out_query = [(k, v) for k, v in query if k != "apikey"]
    if method in ("POST", "PATCH"):
        content_type = out_headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type not in ("application/json", ""):
            raise errors.invalid_body(f"Content-Type not acceptable: {content_type}")
        data = _decode(body)
        check = check_insert if method == "POST" else check_update
        try:
            check(spec, data, is_service=caller.is_service)
        except errors.ApiError:
            if not cached:
                raise
            # The cached spec may predate a drop-and-recreate in another process: decide on the
            # stored one before answering 400.
            spec, _, schema = await registry.table_spec(ctx, database_id, table, caller, fresh=True)
            check(spec, data, is_service=caller.is_service)
        if method == "POST":
            if isinstance(data, list) and not any(k == "columns" for k, _ in out_query):
                _bulk_columns(data, out_query)
            _prefer_missing_default(out_headers)
        _prefer_representation(out_headers)
    elif method == "DELETE":
        _prefer_representation(out_headers)
    if row_id is not None:
        out_query.append(("id", f"eq.{row_id}"))
        prefer = out_headers.get("prefer", "")
        if method in ("PATCH", "DELETE") and "count=" not in prefer:
            # With return=minimal only the counted Content-Range (`*/0`) tells that no row matched.
            out_headers["prefer"] = (prefer + ", " if prefer.strip() else "") + "count=exact"
        # One row is addressed, so one JSON object answers (unless the caller asked for a format).
        if out_headers.get("accept", "*/*").split(";")[0].strip() in ("*/*", "application/json", ""):
            out_headers["accept"] = "application/vnd.pgrst.object+json"

    try:
        from ownbase.rest import engine
    except ImportError:
        raise errors.unavailable("The row endpoints need the /rest/v1 engine, which is not installed.") from None
    response = await engine.handle(
        ctx, method=method, schema=schema, relation=table, query=out_query, headers=out_headers,
        body=body, auth=auth, extra_schema=True,
    )
    if _stale_cache(ctx, schema, response):
        # The registry knows the table, so this process's schema cache predates its DDL (made by
        # another process; the NOTIFY is on its way). Planning failed before any SQL ran, so a
        # retry after a reload is safe even for writes.
        await _reload_engine(ctx)
        response = await engine.handle(
            ctx, method=method, schema=schema, relation=table, query=out_query, headers=out_headers,
            body=body, auth=auth, extra_schema=True,
        )
    if row_id is not None and _matched_nothing(method, response):
        raise errors.row_not_found(table, row_id)
    return response


def _stale_cache(ctx: Context, database_id: str, response: Response) -> bool:
    """Is this error best explained by a schema cache older than the table's DDL?"""
    if response.status_code not in (400, 404):
        return False
    try:
        code = json.loads(getattr(response, "body", b"") or b"{}").get("code")
    except (ValueError, AttributeError):
        return False
    if code == "PGRST205":
        return True  # the registry has the table, the cache does not: certainly stale
    if code not in _STALE_CODES:
        return False
    # An unknown column or relationship may just be the caller's typo: reload for that at most
    # once a second per database, so bad queries cannot keep the catalog busy.
    seen = ctx.state.setdefault("tables", {}).setdefault("stale_reload_at", {})
    now = time.monotonic()
    if now - seen.get(database_id, 0.0) < 1.0:
        return False
    seen[database_id] = now
    return True


def _matched_nothing(method: str, response: Response) -> bool:
    """Did a PATCH/DELETE of rows/{row_id} touch no row (missing, or hidden by RLS)?"""
    body = getattr(response, "body", b"") or b""
    if response.status_code == 406:
        try:
            return json.loads(body).get("code") == "PGRST116"  # single object asked, 0 rows
        except (ValueError, AttributeError):
            return False
    if not 200 <= response.status_code < 300:
        return False
    if body.strip():
        try:
            return json.loads(body) == []
        except ValueError:
            return False
    # return=minimal: the counted Content-Range ends in `/0` (PATCH also says `*/*`) when nothing matched.
    content_range = response.headers.get("content-range", "")
    return content_range.endswith("/0") or (method == "PATCH" and content_range == "*/*")
