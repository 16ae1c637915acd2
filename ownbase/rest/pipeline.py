"""One request through the chain: parse → plan → render → run under the caller's role → respond."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import asyncpg
from starlette.responses import Response

from ownbase.db.scope import RequestScope, request_scope, scoped_read
from ownbase.rest import errors, response, sql
from ownbase.rest.body import check_json_type, dumps, one_object, parse_json, payload
from ownbase.rest.plan import Planner, ReadNode, check_options
from ownbase.rest.request import ApiRequest, negotiate, parse_query
from ownbase.rest.schema_cache import Column, Function, SchemaCache, Table

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
    call = Call(ctx, cache, method, schema, relation, headers, body, auth, profile,
                prefix + relation + ("?" + urlencode(list(query)) if query else ""))
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


def _scope(call: Call) -> RequestScope:
    # A role's own statement_timeout (ALTER ROLE … SET) wins over OWNBASE_DB_STATEMENT_TIMEOUT_MS,
    # because SET ROLE alone would not apply it.
    timeout = call.cache.role_timeouts.get(call.auth.role, call.ctx.settings.db_statement_timeout_ms)
    return RequestScope(call.auth.role, call.auth.claims, call.method, "/" + call.relation,
                        {k: v for k, v in call.headers.items()}, timeout)


async def _response_gucs(conn: Any) -> response.Gucs:
    """``response.headers`` / ``response.status`` as the request's statement left them: read in the
    same transaction before COMMIT; a malformed value raises here and so rolls the transaction back."""
    row = await conn.fetchrow(response.GUC_QUERY)
    return response.parse_gucs(row[0], row[1])


def _media(call: Call) -> str:
    return negotiate(call.headers.get("accept"))


async def _payload(call: Call) -> tuple[Any, str]:
    return await payload(call.body, call.headers.get("content-type"))


def _one_object(call: Call, value: Any) -> Any:
    return one_object(value, call.headers.get("content-type"), call.method)


# --- tables and views ----------------------------------------------------------------------------

async def _relation(call: Call, query: Sequence[tuple[str, str]]) -> Response:
    media = _media(call)
    mode = response.mode_for(media)
    planner = Planner(call.cache, call.schema)
    table = planner.table(call.relation)
    req = parse_query(query, call.headers, method=call.method,
                      aggregates=call.ctx.settings.db_aggregates_enabled)
    if call.method in ("GET", "HEAD"):
        return await _read(call, planner, table, req, mode)
    if call.method == "POST":
        return await _insert(call, planner, table, req, mode)
    if call.method == "PATCH":
        return await _update(call, planner, table, req, mode)
    if call.method == "DELETE":
        return await _delete(call, planner, table, req, mode)
    return await _put(call, planner, table, req, mode)


def _paging(call: Call, req: ApiRequest, root: ReadNode) -> tuple[int | None, int]:
    offset = root.offset if root.offset is not None else req.range_offset
    limits = [x for x in (root.limit, req.range_limit) if x is not None]
    limit = min(limits) if limits else None
    max_rows = call.ctx.settings.db_max_rows
    limit = max_rows if limit is None else min(limit, max_rows)
    return limit, offset


async def _read(call: Call, planner: Planner, table: Table, req: ApiRequest, mode: str,
                source: str | None = None) -> Response:
    root = planner.read(table, req.select, req.options)
    check_options(planner, req.options)
    limit, offset = _paging(call, req, root)
    src = source or sql.qualified(table)
    count = req.prefs.count
    if root.aggregated and count in ("planned", "estimated"):
        count = "exact"  # the groups are counted; a plan's row estimate would be of the table's rows
    # the common case is one statement in one round trip (ownbase.scoped_read, its values packed
    # into one text[]); a timezone or a planned/estimated count needs the explicit transaction
    one_trip = not req.prefs.timezone and count not in ("planned", "estimated")
    params = sql.PackedParams() if one_trip else sql.Params()
    stmt = sql.read_statement(root, params, source=src, limit=limit, offset=offset, count=count,
                              mode=mode, max_rows=call.ctx.settings.db_max_rows)
    if one_trip:
        row = await scoped_read(call.ctx.db, _scope(call), stmt, params.values)
        gucs = response.parse_gucs(row["response_headers"], row["response_status"])
        return response.apply_gucs(_read_response(call, req, mode, row["body"], int(row["page_total"]),
                                                  row["total"], offset), gucs)
    async with request_scope(call.ctx.db, _scope(call), read_only=True) as conn:
        await _timezone(conn, req)
        row = await conn.fetchrow(stmt, *params.values)
        total = row["total"]
        if count in ("planned", "estimated"):
            total = await _estimate(conn, root, src, count, total, call.ctx.settings.db_max_rows)
    return _read_response(call, req, mode, row["body"], int(row["page_total"]), total, offset)


def _read_response(call: Call, req: ApiRequest, mode: str, body: str | None, rows: int, total: int | None,
                   offset: int) -> Response:
    if response.singular_mode(mode) and rows != 1:
        raise errors.singular(rows)
    status = response.read_status(offset, rows, total)
    return response.build(status, body if body is not None else "[]", mode,
                          content_range_=response.content_range(offset, rows, total),
                          pref_applied=response.applied(req.prefs), head=call.method == "HEAD",
                          profile=call.profile, extra={"Content-Location": call.location})


async def _estimate(conn: Any, root: ReadNode, source: str, how: str, exact: int | None,
                    max_rows: int) -> int | None:
    params = sql.Params()
    stmt = sql.count_source(_strip_select(root), params, source=source)
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {stmt}", *params.values)
    if isinstance(plan, str):
        plan = json.loads(plan)
    planned = int(plan[0]["Plan"]["Plan Rows"])
    if how == "planned":
        return planned
    if exact is not None and exact <= max_rows:
        return int(exact)
    return max(int(exact or 0), planned)


def _uses_aggregates(node: ReadNode) -> bool:
    return node.aggregated or any(_uses_aggregates(e.node) for e in node.embeds)


def _strip_select(root: ReadNode) -> ReadNode:
    return ReadNode(root.table, root.alias, [], root.embeds, root.conditions, [], None, None, [])


async def _timezone(conn: Any, req: ApiRequest) -> None:
    if req.prefs.timezone:
        ok = await conn.fetchval("select exists(select 1 from pg_timezone_names where name = $1)",
                                 req.prefs.timezone)
        if ok:
            await conn.execute("select set_config('timezone', $1, true)", req.prefs.timezone)
        else:
            req.prefs.timezone = None


# --- mutations -----------------------------------------------------------------------------------

def _columns(table: Table, names: Sequence[str]) -> list[Column]:
    cols = []
    for n in names:
        c = table.columns.get(n)
        if c is None:
            raise errors.no_column(n, table.name)
        cols.append(c)
    return cols


def _where(root: ReadNode, params: sql.Params) -> tuple[list[str], str]:
    r = sql.render_node(_strip_select(root), params, sql.qualified(root.table))
    return r.where, r.order


def _returning_root(planner: Planner, table: Table, req: ApiRequest) -> tuple[ReadNode, ReadNode]:
    """(node for filters/order of the DML, node for the returned representation)."""
    root = planner.read(table, req.select, req.options)
    check_options(planner, req.options)
    if _uses_aggregates(root):
        raise errors.not_implemented("aggregate functions in the select of an insert, update or delete")
    ret = ReadNode(table, root.alias, root.columns, root.embeds, [], [], None, None, root.layout)
    return root, ret


async def _mutate(call: Call, req: ApiRequest, mode: str, table: Table, ret: ReadNode, dml_returning: str,
                  dml_minimal: str, params: sql.Params, params_min: sql.Params, *, kind: str) -> Response:
    prefs = req.prefs
    ret_mode = prefs.return_ or "minimal"
    if mode == "csv" and ret_mode != "representation":
        mode = "json"
    async with request_scope(call.ctx.db, _scope(call)) as conn:
        await _timezone(conn, req)
        if ret_mode == "minimal" and not response.singular_mode(mode):
            status_tag = await conn.execute(dml_minimal, *params_min.values)
            rows = int(status_tag.split()[-1]) if status_tag.split()[-1].isdigit() else 0
            body = None
            inserted = None
            loc = None
        else:
            stmt = sql.mutation_statement(dml_returning, ret, params, mode, inserted=kind == "insert"
                                          and table.kind in ("r", "p"), pk=table.pk)
            row = await conn.fetchrow(stmt, *params.values)
            rows = int(row["page_total"])
            body = row["body"]
            inserted = row["inserted"]
            loc = row["location"]
            if response.singular_mode(mode) and rows != 1:
                raise errors.singular(rows)  # rolls the transaction back
        if prefs.max_affected is not None and prefs.handling == "strict" and kind != "insert" \
                and rows > prefs.max_affected:
            raise errors.ApiError(400, "PGRST124", "Query result exceeds max-affected preference constraint",
                                  f"The query affects {rows} rows")  # rolls the transaction back
        gucs = await _response_gucs(conn)
    total = rows if prefs.count in ("exact", "estimated") else None
    extra: dict[str, str] = {}
    if kind == "insert":
        status = 201
        if prefs.resolution == "merge-duplicates" and inserted is not None and (rows == 0 or inserted == 0) \
                and req.on_conflict_applied:
            status = 200
        crange = f"*/{total if total is not None else '*'}"
        if ret_mode == "headers-only" and loc:
            pks = json.loads(loc)
            if len(pks) == 1 and table.pk:
                extra["Location"] = response.location(call.relation, table.pk, pks[0])
    else:
        status = 200 if ret_mode == "representation" else 204
        # PostgREST: a minimal DELETE reports no range (`*/*`), a PATCH the rows it touched
        crange = f"*/{total if total is not None else '*'}" if kind == "delete" and ret_mode != "representation" \
            else response.content_range(0, rows, total)
    pref = response.applied(prefs, resolution=kind == "insert" and bool(req.on_conflict_applied),
                            missing=kind in ("insert", "update"), ret=True)
    if ret_mode != "representation":
        return response.apply_gucs(response.build(status, None, mode, content_range_=crange, pref_applied=pref,
                                                  extra=extra, profile=call.profile), gucs)
    return response.apply_gucs(response.build(status, body if body is not None else "[]", mode,
                                              content_range_=crange, pref_applied=pref, extra=extra,
                                              profile=call.profile), gucs)


async def _insert(call: Call, planner: Planner, table: Table, req: ApiRequest, mode: str) -> Response:
    payload, raw = await _payload(call)
    objs = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(o, dict) for o in objs):
        raise errors.bad_body()
    if req.columns is not None:
        names = req.columns
    else:
        names = list(objs[0].keys()) if objs else []
        keyset = set(names)
        if any(set(o.keys()) != keyset for o in objs[1:]):
            raise errors.bad_body("All object keys must match")
    cols = _columns(table, names)
    on_conflict = req.on_conflict or (list(table.pk) if table.pk else None)
    resolution = req.prefs.resolution if on_conflict else None
    if on_conflict:
        _columns(table, on_conflict)
    req.on_conflict_applied = bool(resolution)
    _root, ret = _returning_root(planner, table, req)
    missing_default = req.prefs.missing == "default"
    if not objs:
        # Nothing to insert: answer like PostgREST without touching the table.
        ret_mode = req.prefs.return_ or "minimal"
        body = "[]" if ret_mode == "representation" else None
        if response.singular_mode(mode):
            raise errors.singular(0)
        return response.build(201, body, mode, content_range_="*/*",
                              pref_applied=response.applied(req.prefs, ret=True))
    params = sql.Params()
    bp = f"{params.text(raw)}::json"
    dml = sql.insert_sql(table, ret.alias, cols, params, bp, missing_default=missing_default,
                         on_conflict=on_conflict, resolution=resolution, returning=True)
    pmin = sql.Params()
    bpm = f"{pmin.text(raw)}::json"
    dml_min = sql.insert_sql(table, ret.alias, cols, pmin, bpm, missing_default=missing_default,
                             on_conflict=on_conflict, resolution=resolution, returning=False)
    return await _mutate(call, req, mode, table, ret, dml, dml_min, params, pmin, kind="insert")


async def _update(call: Call, planner: Planner, table: Table, req: ApiRequest, mode: str) -> Response:
    payload = _one_object(call, (await _payload(call))[0])
    if not isinstance(payload, dict):
        raise errors.bad_body()
    cols = _columns(table, list(payload.keys()))
    root, ret = _returning_root(planner, table, req)
    req.on_conflict_applied = False
    if not cols:
        # An empty patch changes nothing: PostgREST answers without running an UPDATE.
        ret_mode = req.prefs.return_ or "minimal"
        return response.build(200 if ret_mode == "representation" else 204,
                              "[]" if ret_mode == "representation" else None, mode, content_range_="*/*")
    raw = dumps(payload)

    def render(returning: bool) -> tuple[str, sql.Params]:
        params = sql.Params()
        where, order = _where(root, params)
        where = sql.limited(table, root, where, order, root.limit, root.offset)
        bp = f"{params.text(raw)}::json"
        return sql.update_sql(table, root, cols, params, bp, where, returning), params

    dml, params = render(True)
    dml_min, pmin = render(False)
    return await _mutate(call, req, mode, table, ret, dml, dml_min, params, pmin, kind="update")


async def _delete(call: Call, planner: Planner, table: Table, req: ApiRequest, mode: str) -> Response:
    root, ret = _returning_root(planner, table, req)
    req.on_conflict_applied = False

    def render(returning: bool) -> tuple[str, sql.Params]:
        params = sql.Params()
        where, order = _where(root, params)
        where = sql.limited(table, root, where, order, root.limit, root.offset)
        return sql.delete_sql(table, root, where, returning), params

    dml, params = render(True)
    dml_min, pmin = render(False)
    return await _mutate(call, req, mode, table, ret, dml, dml_min, params, pmin, kind="delete")


async def _put(call: Call, planner: Planner, table: Table, req: ApiRequest, mode: str) -> Response:
    """PUT /t?pk=eq.v with one full row: insert or replace that row."""
    from ownbase.rest.request import Filter

    opts = req.options.get(())
    if opts is not None and (opts.limit is not None or opts.offset is not None):
        raise errors.put_limit()
    conds = opts.conditions if opts else []
    pk = list(table.pk)
    eqs: dict[str, str] = {}
    for c in conds:
        if not isinstance(c, Filter) or c.op != "eq" or c.negate or c.field.json_path:
            raise errors.put_filters()
        eqs[c.field.name] = str(c.value)
    if not pk or sorted(eqs) != sorted(pk):
        raise errors.put_filters()
    payload = _one_object(call, (await _payload(call))[0])
    obj = payload[0] if isinstance(payload, list) and len(payload) == 1 else payload
    if not isinstance(obj, dict):
        raise errors.bad_body()
    for k in pk:
        if k not in obj or str(obj[k]) != eqs[k]:
            raise errors.put_mismatch()
    cols = _columns(table, list(obj.keys()))
    req.prefs.resolution = "merge-duplicates"
    req.on_conflict = pk
    req.on_conflict_applied = True
    # the filters only name the row; the representation is the plain select list
    _root, ret = _returning_root(planner, table, ApiRequest(req.select, {}, req.prefs))
    raw = dumps(obj)
    params = sql.Params()
    dml = sql.insert_sql(table, ret.alias, cols, params, f"{params.text(raw)}::json", missing_default=False,
                         on_conflict=pk, resolution="merge-duplicates", returning=True)
    stmt = sql.mutation_statement(dml, ret, params, mode if mode != "csv" else "json",
                                  inserted=table.kind in ("r", "p"), pk=table.pk)
    async with request_scope(call.ctx.db, _scope(call)) as conn:
        row = await conn.fetchrow(stmt, *params.values)
        gucs = await _response_gucs(conn)
    ret_mode = req.prefs.return_ or "minimal"
    if ret_mode == "representation":
        status = 201 if (row["inserted"] or 0) > 0 else 200
        return response.apply_gucs(response.build(status, row["body"], mode if mode != "csv" else "json",
                                                  profile=call.profile), gucs)
    return response.apply_gucs(response.build(204, None, mode, profile=call.profile), gucs)


# --- RPC -----------------------------------------------------------------------------------------

async def _rpc(call: Call, query: Sequence[tuple[str, str]]) -> Response:
    if call.method not in ("GET", "HEAD", "POST"):
        raise errors.rpc_method(call.method)
    media = _media(call)
    mode = response.mode_for(media)
    overloads = call.cache.functions.get((call.schema, call.relation), [])
    arg_names = {a.name for f in overloads for a in f.in_args if a.name}
    req = parse_query(query, call.headers, method=call.method, rpc_arg_names=arg_names, is_rpc=True,
                      aggregates=call.ctx.settings.db_aggregates_enabled)

    single_object = req.prefs.params == "single-object"
    if call.method == "POST":
        if call.body.strip():
            check_json_type(call.headers.get("content-type"))
            args_obj = parse_json(call.body)
        else:
            args_obj = {}
        if isinstance(args_obj, list):
            raise errors.not_implemented("calling a function with a JSON array body (bulk RPC)")
    else:
        args_obj = dict(req.rpc_args)
    raw_body = call.body.decode() if call.body.strip() else "{}"
    fn, names, whole = _choose(call, overloads, args_obj, single_object)
    params = sql.Params()
    if whole:
        arg_payload = raw_body if call.method == "POST" else json.dumps(args_obj)
        call_sql = f"{params.text(arg_payload)}::{fn.in_args[0].type}"
        if fn.in_args[0].name:
            call_sql = f"{sql.quote_ident(fn.in_args[0].name)} := {call_sql}"
        frm = ""
    else:
        payload = raw_body if call.method == "POST" else json.dumps(args_obj)
        frm, call_sql = sql.call_args(fn, names, params, f"{params.text(payload)}::json") if names else ("", "")
    fname = sql.function_name(fn)
    invoke = f"{fname}({call_sql})"
    read_only = call.method in ("GET", "HEAD")
    if fn.kind == "void":
        stmt = f"SELECT {invoke} FROM {frm}" if frm else f"SELECT {invoke}"
        async with request_scope(call.ctx.db, _scope(call), read_only=read_only) as conn:
            if read_only:
                await conn.execute("SET TRANSACTION READ ONLY")
            await conn.execute(stmt, *params.values)
            gucs = await _response_gucs(conn)
        return response.apply_gucs(response.build(204, None, "json", profile=call.profile), gucs)
    offset = 0
    if fn.kind == "scalar":
        if fn.returns_set:
            limit, offset = _paging(call, req, ReadNode(Table(fn.schema, fn.name, "f", {}), "t0",
                                                        limit=req.options[()].limit,
                                                        offset=req.options[()].offset))
            inner = f"SELECT _f.v FROM {frm + ' CROSS JOIN LATERAL ' if frm else ''}{invoke} AS _f(v)"
            if limit is not None:
                inner += f" LIMIT {int(limit)}"
            if offset:
                inner += f" OFFSET {int(offset)}"
            agg = "CASE WHEN count(*) = 1 THEN (json_agg(_t.v) -> 0)::text END" if response.singular_mode(mode) \
                else "coalesce(json_agg(_t.v), '[]')::text"
            stmt = f"SELECT NULL::bigint AS total, count(*) AS page_total, {agg} AS body FROM ({inner}) AS _t"
        else:
            stmt = (f"SELECT NULL::bigint AS total, 1 AS page_total, to_json({invoke})::text AS body"
                    + (f" FROM {frm}" if frm else ""))
        async with request_scope(call.ctx.db, _scope(call), read_only=read_only) as conn:
            if read_only:
                await conn.execute("SET TRANSACTION READ ONLY")
            row = await conn.fetchrow(stmt, *params.values)
            gucs = await _response_gucs(conn)
        if fn.returns_set:
            return response.apply_gucs(_read_response(call, req, mode if mode != "csv" else "json", row["body"],
                                                      int(row["page_total"]), None, offset), gucs)
        return response.apply_gucs(response.build(200, row["body"] if row["body"] is not None else "null",
                                                  "json" if mode == "csv" else mode, content_range_="0-0/*",
                                                  profile=call.profile), gucs)
    # composite results behave like a table: select, filters, order, embedding on the rows
    table = _result_table(call.cache, fn)
    source = f"(SELECT _f.* FROM {frm + ' CROSS JOIN LATERAL ' if frm else ''}{invoke} AS _f)"
    planner = Planner(call.cache, call.schema)
    root = planner.read(table, req.select, req.options)
    check_options(planner, req.options)
    limit, offset = _paging(call, req, root)
    if not fn.returns_set and mode in ("json", "json_stripped"):
        mode = "object" if mode == "json" else "object_stripped"
    stmt = sql.read_statement(root, params, source=source, limit=limit, offset=offset,
                              count=req.prefs.count if req.prefs.count == "exact" else None, mode=mode,
                              max_rows=call.ctx.settings.db_max_rows)
    async with request_scope(call.ctx.db, _scope(call), read_only=read_only) as conn:
        if read_only:
            await conn.execute("SET TRANSACTION READ ONLY")
        row = await conn.fetchrow(stmt, *params.values)
        gucs = await _response_gucs(conn)
    if not fn.returns_set and row["body"] is None:
        return response.apply_gucs(response.build(200, "null", "json", content_range_="0-0/*",
                                                  profile=call.profile), gucs)
    return response.apply_gucs(_read_response(call, req, mode, row["body"], int(row["page_total"]),
                                              row["total"], offset), gucs)


def _result_table(cache: SchemaCache, fn: Function) -> Table:
    if fn.return_relation is not None:
        t = cache.table(*fn.return_relation)
        if t is not None:
            return t
    cols = {name: Column(name, typ, True, None, i + 1, base_type=typ) for i, (name, typ) in enumerate(fn.out_columns)}
    return Table(fn.schema, fn.name, "f", cols)


def _choose(call: Call, overloads: list[Function], args: Any,
            single_object: bool) -> tuple[Function, list[str], bool]:
    """Pick the function for the given arguments: (function, argument names, pass body whole)."""
    if single_object or not isinstance(args, dict):
        for f in overloads:
            if len(f.in_args) == 1 and f.in_args[0].type in ("json", "jsonb"):
                return f, [], True
        keys = sorted(args.keys()) if isinstance(args, dict) else []
        raise errors.no_function(call.schema, call.relation, keys, True)
    keys = list(args.keys())
    matches = []
    for f in overloads:
        names = {a.name for a in f.in_args if a.name}
        required = {a.name for a in f.in_args if not a.has_default}
        if set(keys) <= names and required <= set(keys) and all(a.name for a in f.in_args):
            matches.append(f)
    if len(matches) > 1:
        exact = [f for f in matches if len(f.in_args) == len(keys)]
        if len(exact) == 1:
            matches = exact
        else:
            raise errors.ambiguous_function([f.signature() for f in matches])
    if matches:
        return matches[0], keys, False
    for f in overloads:
        if f.single_unnamed_json:
            return f, [], True
    names_all = [n for (s, n) in call.cache.functions if s == call.schema]
    import difflib

    close = difflib.get_close_matches(call.relation, names_all, n=1, cutoff=0.75)
    raise errors.no_function(call.schema, call.relation, sorted(keys), False,
                             close[0] if close and close[0] != call.relation else None)
