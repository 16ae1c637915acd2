"""/db/v1 routes (thin: parse, resolve the caller, call service.py, render)."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ownbase.context import Context
from ownbase.http.auth_context import AuthContext, CredentialError, resolve
from ownbase.service import Service
from ownbase.tables import errors, service
from ownbase.tables.registry import Caller

Handler = Callable[[Request, Context, AuthContext], Awaitable[Response]]


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, media_type="application/json; charset=utf-8")


async def _body(request: Request, ctx: Context) -> bytes:
    limit = ctx.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.TablesError(413, "PGRST102", f"Request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.TablesError(413, "PGRST102", f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        ctx: Context = request.app.state.ctx
        try:
            try:
                auth = resolve(ctx.keys, request.headers, request.query_params.get("apikey"))
            except CredentialError as exc:
                raise errors.credentials(exc.message, exc.reason) from None
            return await handler(request, ctx, auth)
        except errors.TablesError as exc:
            return exc.response()

    return endpoint


async def _parsed(request: Request, ctx: Context) -> Any:
    raw = await _body(request, ctx)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_body() from None


async def databases(request: Request, ctx: Context, auth: AuthContext) -> Response:
    return _json(await service.list_databases(ctx, Caller.from_auth(auth)))


async def tables(request: Request, ctx: Context, auth: AuthContext) -> Response:
    caller = Caller.from_auth(auth)
    database_id = request.path_params["database_id"]
    if request.method == "POST":
        return _json(await service.create_table(ctx, caller, database_id, await _parsed(request, ctx)), 201)
    return _json(await service.list_tables(ctx, caller, database_id))


async def table(request: Request, ctx: Context, auth: AuthContext) -> Response:
    caller = Caller.from_auth(auth)
    database_id, name = request.path_params["database_id"], request.path_params["table"]
    if request.method == "DELETE":
        await service.drop_table(ctx, caller, database_id, name)
        return Response(status_code=204)
    return _json(await service.get_table(ctx, caller, database_id, name))


async def rows(request: Request, ctx: Context, auth: AuthContext) -> Response:
    method = request.method
    body = await _body(request, ctx) if method in ("POST", "PATCH") else b""
    return await service.rows(
        ctx, auth, method=method, database_id=request.path_params["database_id"],
        table=request.path_params["table"], row_id=request.path_params.get("row_id"),
        query=request.query_params.multi_items(), headers=request.headers, body=body,
    )


ROUTES = [
    Route("/db/v1/", _endpoint(databases), methods=["GET"]),
    Route("/db/v1/{database_id}/tables", _endpoint(tables), methods=["GET", "POST"]),
    Route("/db/v1/{database_id}/tables/{table}", _endpoint(table), methods=["GET", "DELETE"]),
    Route("/db/v1/{database_id}/tables/{table}/rows", _endpoint(rows), methods=["GET", "HEAD", "POST"]),
    Route("/db/v1/{database_id}/tables/{table}/rows/{row_id}", _endpoint(rows), methods=["GET", "PATCH", "DELETE"]),
]

SERVICE = Service(name="tables", routes=list(ROUTES))
