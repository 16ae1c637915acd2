"""One request through the chain: parse → plan → render → run under the caller's role → respond.

This module only dispatches: ``request`` and ``body`` parse, ``plan``/``plan_write``/``plan_call``
decide, ``sql`` renders, ``execute`` runs (``db.scope.scoped_read`` for a plain read), ``response``
shapes the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import asyncpg
from starlette.responses import Response

from ownbase.db.scope import RequestScope, scoped_read
from ownbase.rest import errors, plan_call, plan_write, response, sql
from ownbase.rest.body import check_json_type, content_type, dumps, one_object, parse_json, payload
from ownbase.rest.execute import Fetch, Outcome, Statement, execute, tx_end
from ownbase.rest.plan import Planner, ReadNode, check_options, filters_only
from ownbase.rest.plan_call import Shape
from ownbase.rest.plan_write import Op, Return, WritePlan
from ownbase.rest.request import ApiRequest, Media, PlanMedia, negotiate, parse_query, plan_media
from ownbase.rest.schema_cache import SchemaCache, Table

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.http.auth_context import AuthContext

METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE", "PUT")


@dataclass
class Call:
    ctx: Context
    cache: SchemaCache
    method: str
    schema: str
    relation: str
    headers: Mapping[str, str]
    body: bytes
    auth: AuthContext
    profile: str | None
    location: str = ""  # Content-Location of reads: the path and query string as received
    explain: PlanMedia | None = None  # Accept: application/vnd.pgrst.plan (OWNBASE_DB_PLAN_ENABLED)


async def run(ctx: Context, cache: SchemaCache, *, method: str, schema: str, relation: str,
              query: Sequence[tuple[str, str]], headers: Mapping[str, str], body: bytes,
              auth: AuthContext, rpc: bool) -> Response:
    method = method.upper()
    if method == "OPTIONS":
        allow = "OPTIONS,POST" if rpc else "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
        return Response(b"", status_code=200, headers={"Allow": allow})
    if method not in METHODS:
        raise errors.unsupported_method(method)
    if len(body) > ctx.settings.max_body_bytes:
        raise errors.body_too_large(ctx.settings.max_body_bytes)
    profile = schema if len(ctx.settings.db_schemas) > 1 or headers.get("accept-profile") \
        or headers.get("content-profile") else None
    prefix = "/rpc/" if rpc else "/"
    explain = plan_media(headers.get("accept")) if ctx.settings.db_plan_enabled else None
    call = Call(ctx, cache, method, schema, relation, headers, body, auth, profile,
                prefix + relation + ("?" + urlencode(list(query)) if query else ""), explain)
    try:
        if rpc:
            return await _rpc(call, query)
        return await _relation(call, query)
    except asyncpg.PostgresError as exc:
        raise errors.from_postgres(exc, auth.role) from None
    except (TimeoutError, asyncpg.exceptions.TooManyConnectionsError) as exc:
        raise errors.pool_timeout() from exc
    except (OSError, asyncpg.exceptions.InterfaceError) as exc:
        raise errors.db_unreachable(str(exc)) from None


# --- shared steps --------------------------------------------------------------------------------

def _scope(call: Call) -> RequestScope:
    # A role's own statement_timeout (ALTER ROLE … SET) wins over OWNBASE_DB_STATEMENT_TIMEOUT_MS,
    # because SET ROLE alone would not apply it.
    timeout = call.cache.role_timeouts.get(call.auth.role, call.ctx.settings.db_statement_timeout_ms)
    return RequestScope(call.auth.role, call.auth.claims, call.method, "/" + call.relation,
                        {k: v for k, v in call.headers.items()}, timeout)


def _mode(call: Call) -> Media:
    """The response's shape: the ``for`` media of an EXPLAIN, else the negotiated Accept."""
    accept = call.explain.for_media if call.explain is not None else call.headers.get("accept")
    return Media.of(negotiate(accept, geo=call.cache.postgis is not None))


def _tx(call: Call, req: ApiRequest) -> tuple[bool, str | None]:
    return tx_end(call.ctx.settings.db_tx_end, req.prefs.tx)


async def _run(call: Call, req: ApiRequest, stmt: Statement, *, fetch: Fetch = Fetch.ROW, read_only: bool = False,
               guard: bool = False, check: Any = None, after: Any = None, gucs: bool = True) -> Outcome:
    rollback, _ = _tx(call, req)
    return await execute(call.ctx.db, _scope(call), stmt, fetch=fetch, read_only=read_only, guard=guard,
                         timezone=req.prefs.timezone, check=check, after=after, gucs=gucs, rollback=rollback)


async def _explain(call: Call, req: ApiRequest, stmt: Statement, *, read_only: bool, guard: bool = False) -> Response:
    """The statement's EXPLAIN, as PostgREST's ``application/vnd.pgrst.plan``; always rolled back
    (with ``options=analyze`` the statement really runs)."""
    media = call.explain
    assert media is not None
    text = sql.explain(stmt.text, media.format, media.options)
    out = await execute(call.ctx.db, _scope(call), Statement(text, stmt.values), fetch=Fetch.ALL,
                        read_only=read_only, guard=guard, timezone=req.prefs.timezone, gucs=False, rollback=True)
    if media.format == "json":
        first = out.rows[0][0] if out.rows else "[]"
        body = first if isinstance(first, str) else json.dumps(first)
    else:
        body = "\n".join(str(r[0]) for r in out.rows)
    ctype = f'application/vnd.pgrst.plan+{media.format}; for="{media.for_media}"; charset=utf-8'
    return Response(body.encode(), status_code=200, headers={"Content-Type": ctype})


def _paging(call: Call, req: ApiRequest, limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """The rows to return: ``limit``/``offset`` and the Range header, capped by OWNBASE_DB_MAX_ROWS."""
    start = offset if offset is not None else req.range_offset
    limits = [x for x in (limit, req.range_limit) if x is not None]
    max_rows = call.ctx.settings.db_max_rows
    return (min([*limits, max_rows])), start


def _read_response(call: Call, req: ApiRequest, mode: Media, body: str | None, rows: int, total: int | None,
                   offset: int, *, count: bool = True, timezone: str | None = None, **extra: Any) -> Response:
    if mode.singular and rows != 1:
        raise errors.singular(rows)
    status = response.read_status(offset, rows, total)
    pref = response.applied(req.prefs, count=count, tx=_tx(call, req)[1], timezone=timezone, **extra)
    return response.build(status, body if body is not None else "[]", mode,
                          content_range_=response.content_range(offset, rows, total),
                          pref_applied=pref, head=call.method == "HEAD",
                          profile=call.profile, extra={"Content-Location": call.location})


# --- tables and views ----------------------------------------------------------------------------

async def _relation(call: Call, query: Sequence[tuple[str, str]]) -> Response:
    mode = _mode(call)
    planner = Planner(call.cache, call.schema)
    table = planner.table(call.relation)
    req = parse_query(query, call.headers, method=call.method,
                      aggregates=call.ctx.settings.db_aggregates_enabled)
    if call.method in ("GET", "HEAD"):
        return await _read(call, planner, table, req, mode)
    if call.method == "DELETE":
        return await _write(call, req, plan_write.delete(planner, table, req), mode)
    if call.method == "PUT":
        eqs = plan_write.put_filters(table, req)
        value = one_object((await _body(call))[0], call.headers.get("content-type"), call.method)
        return await _write(call, req, plan_write.put(planner, table, req, value, eqs, dumps), mode)
    value, text = await _body(call)
    if call.method == "POST":
        return await _write(call, req, plan_write.insert(planner, table, req, value, text), mode)
    value = one_object(value, call.headers.get("content-type"), call.method)
    return await _write(call, req, plan_write.update(planner, table, req, value, dumps(value)), mode)


async def _body(call: Call) -> tuple[Any, str]:
    return await payload(call.body, call.headers.get("content-type"))


async def _read(call: Call, planner: Planner, table: Table, req: ApiRequest, mode: Media) -> Response:
    root = planner.read(table, req.select, req.options)
    check_options(planner, req.options)
    limit, offset = _paging(call, req, root.limit, root.offset)
    source = sql.qualified(table)
    count = req.prefs.count
    if root.aggregated and count in ("planned", "estimated"):
        count = "exact"  # the groups are counted; a plan's row estimate would be of the table's rows
    max_rows = call.ctx.settings.db_max_rows
    geo = call.cache.postgis
    # the common case is one statement in one round trip (ownbase.scoped_read_prepared, its values
    # packed into one text[], the statement prepared once per connection); a timezone, a planned/estimated count, a rollback or an EXPLAIN needs the
    # explicit transaction
    one_trip = not req.prefs.timezone and count not in ("planned", "estimated") and not _tx(call, req)[0] \
        and call.explain is None
    params = sql.PackedParams() if one_trip else sql.Params()
    text = sql.read_statement(root, params, source=source, limit=limit, offset=offset, count=count,
                              mode=mode, max_rows=max_rows, geo=geo)
    if call.explain is not None:
        return await _explain(call, req, Statement(text, params.values), read_only=True)
    if one_trip:
        row = await scoped_read(call.ctx.db, _scope(call), text, params.values)
        gucs = response.parse_gucs(row["response_headers"], row["response_status"])
        return response.apply_gucs(_read_response(call, req, mode, row["body"], int(row["page_total"]),
                                                  row["total"], offset), gucs)

    async def estimate(conn: Any, out: Outcome) -> int | None:
        if count not in ("planned", "estimated"):
            return out.row["total"]
        return await _estimate(conn, root, source, count, out.row["total"], max_rows)

    out = await _run(call, req, Statement(text, params.values), read_only=True, after=estimate)
    return response.apply_gucs(_read_response(call, req, mode, out.row["body"], int(out.row["page_total"]),
                                              out.extra, offset, timezone=out.timezone), out.gucs)


async def _estimate(conn: Any, root: ReadNode, source: str, how: str, exact: int | None,
                    max_rows: int) -> int | None:
    params = sql.Params()
    stmt = sql.count_source(filters_only(root), params, source=source)
    plan = await conn.fetchval(sql.explain(stmt), *params.values)
    if isinstance(plan, str):
        plan = json.loads(plan)
    planned = int(plan[0]["Plan"]["Plan Rows"])
    if how == "planned":
        return planned
    if exact is not None and exact <= max_rows:
        return int(exact)
    return max(int(exact or 0), planned)


# --- writes --------------------------------------------------------------------------------------

def _max_affected(req: ApiRequest, rows: int) -> None:
    prefs = req.prefs
    if prefs.max_affected is not None and prefs.handling == "strict" and rows > prefs.max_affected:
        raise errors.ApiError(400, "PGRST124", "Query result exceeds max-affected preference constraint",
                              f"The query affects {rows} rows")  # rolls the transaction back


async def _write(call: Call, req: ApiRequest, plan: WritePlan, mode: Media) -> Response:
    if plan.nothing:
        return response.nothing_written(plan, mode)
    if plan.ret is not Return.REPRESENTATION or plan.op is Op.PUT:
        mode = mode.json_only()  # no rows to put in a CSV
    # return=minimal needs no result rows (and works without a SELECT policy); a PUT always
    # reads back whether it inserted
    bare = plan.op is not Op.PUT and plan.ret is Return.MINIMAL and not mode.singular
    params = sql.Params()
    stmt = Statement(sql.write_statement(plan, params, returning=not bare, mode=mode, geo=call.cache.postgis),
                     params.values)
    if call.explain is not None:
        return await _explain(call, req, stmt, read_only=False)

    def check(out: Outcome) -> None:
        if plan.op is Op.PUT:
            return
        rows = out.affected if bare else int(out.row["page_total"])
        if not bare and mode.singular and rows != 1:
            raise errors.singular(rows)  # rolls the transaction back
        if plan.op is not Op.INSERT:
            _max_affected(req, rows)

    out = await _run(call, req, stmt, fetch=Fetch.STATUS if bare else Fetch.ROW, check=check)
    resp = response.written(plan, mode, out.row, out.affected if bare else None, relation=call.relation,
                            profile=call.profile, tx=_tx(call, req)[1], timezone=out.timezone)
    return response.apply_gucs(resp, out.gucs)


# --- RPC -----------------------------------------------------------------------------------------

async def _rpc(call: Call, query: Sequence[tuple[str, str]]) -> Response:
    if call.method not in ("GET", "HEAD", "POST"):
        raise errors.rpc_method(call.method)
    mode = _mode(call)
    overloads = call.cache.functions.get((call.schema, call.relation), [])
    arg_names = {a.name for f in overloads for a in f.in_args if a.name}
    req = parse_query(query, call.headers, method=call.method, rpc_arg_names=arg_names, is_rpc=True,
                      aggregates=call.ctx.settings.db_aggregates_enabled)
    plan, argument = _choose(call, req)
    plan.check_max_affected(req.prefs)
    mode = plan.result_mode(mode)
    read_only = call.method in ("GET", "HEAD")
    count = req.prefs.count == "exact"
    root: ReadNode | None = None
    limit, offset = _paging(call, req, req.options[()].limit, req.options[()].offset)
    if plan.shape in (Shape.ROW, Shape.ROWS):
        # composite results behave like a table: select, filters, order, embedding on the rows
        planner = Planner(call.cache, call.schema)
        root = planner.read(plan_call.result_table(call.cache, plan.function), req.select, req.options)
        check_options(planner, req.options)
        limit, offset = _paging(call, req, root.limit, root.offset)
    params = sql.Params()
    text = sql.call_statement(plan, params, argument, mode=mode, count=count, limit=limit, offset=offset,
                              root=root, max_rows=call.ctx.settings.db_max_rows, geo=call.cache.postgis)
    stmt = Statement(text, params.values)
    if call.explain is not None:
        return await _explain(call, req, stmt, read_only=read_only, guard=read_only)

    def check(out: Outcome) -> None:
        if plan.function.returns_set:
            _max_affected(req, int(out.row["page_total"]))

    void = plan.shape is Shape.VOID
    out = await _run(call, req, stmt, fetch=Fetch.STATUS if void else Fetch.ROW, read_only=read_only,
                     guard=read_only, check=check)
    applied = {"count": count, "timezone": out.timezone, "max_affected": True}
    if plan.shape in (Shape.VALUES, Shape.ROWS) or (plan.shape is Shape.ROW and out.row["body"] is not None):
        resp = _read_response(call, req, mode, out.row["body"], int(out.row["page_total"]), out.row["total"],
                              offset, **applied)
    else:
        resp = response.called(void, None if void else out.row["body"],
                               mode if plan.shape is Shape.VALUE else Media.JSON,
                               counted=count, profile=call.profile,
                               pref_applied=response.applied(req.prefs, tx=_tx(call, req)[1], **applied))
    return response.apply_gucs(resp, out.gucs)


def _choose(call: Call, req: ApiRequest) -> tuple[plan_call.CallPlan, str | bytes]:
    """The overload to call and its argument: the JSON text of the named arguments, or the raw body
    for a function with a single unnamed parameter."""
    single_object = req.prefs.params == "single-object"
    if call.method != "POST":
        args = dict(req.rpc_args)
        plan = plan_call.choose(call.cache, call.schema, call.relation, list(args), kind="application/json",
                                post=False, single_object=single_object)
        return plan, dumps(args)
    kind = plan_call.media_kind(content_type(call.headers.get("content-type")))
    if kind in plan_call.RAW_TYPES and kind != "application/json":
        plan = plan_call.choose(call.cache, call.schema, call.relation, [], kind=kind, post=True,
                                single_object=False)
        if kind == "application/octet-stream":
            return plan, call.body
        try:
            return plan, call.body.decode()
        except UnicodeDecodeError:
            raise errors.bad_body("The body is not UTF-8") from None
    args: Any = {}
    if call.body.strip():
        check_json_type(call.headers.get("content-type"))
        args = parse_json(call.body)
    try:
        text = call.body.decode() if call.body.strip() else "{}"
    except UnicodeDecodeError:  # valid JSON in another Unicode encoding
        text = dumps(args)
    plan = plan_call.choose(call.cache, call.schema, call.relation, list(args) if isinstance(args, dict) else [],
                            kind="application/json", post=True, single_object=single_object,
                            array=not isinstance(args, dict))
    return plan, text
