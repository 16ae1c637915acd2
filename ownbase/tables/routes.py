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
        raise errors.body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(handlers: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint per path; an unsupported method is a 405 in PostgREST's shape."""
    allowed = ", ".join(sorted(handlers))

    async def endpoint(request: Request) -> Response:
        ctx: Context = request.app.state.ctx
        try:
            handler = handlers.get(request.method)
            if handler is None:
                raise errors.method_not_allowed(request.method, allowed)
            try:
                auth = resolve(ctx.keys, request.headers, request.query_params.get("apikey"))
            except CredentialError as exc:
                raise errors.credentials(exc.message, exc.reason) from None
            return await handler(request, ctx, auth)
        except errors.ApiError as exc:
            return exc.response()

    return endpoint


async def not_found(request: Request) -> Response:
    return errors.invalid_path().response()


async def _parsed(request: Request, ctx: Context) -> Any:
    raw = await _body(request, ctx)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_body() from None


async def databases(request: Request, ctx: Context, auth: AuthContext) -> Response:
    return _json(await service.list_databases(ctx, Caller.from_auth(auth)))


async def list_tables(request: Request, ctx: Context, auth: AuthContext) -> Response:
    return _json(await service.list_tables(ctx, Caller.from_auth(auth), request.path_params["database_id"]))


async def create_table(request: Request, ctx: Context, auth: AuthContext) -> Response:
    caller = Caller.from_auth(auth)
    body = await _parsed(request, ctx)
    return _json(await service.create_table(ctx, caller, request.path_params["database_id"], body), 201)


async def get_table(request: Request, ctx: Context, auth: AuthContext) -> Response:
    params = request.path_params
    return _json(await service.get_table(ctx, Caller.from_auth(auth), params["database_id"], params["table"]))


async def drop_table(request: Request, ctx: Context, auth: AuthContext) -> Response:
    params = request.path_params
    await service.drop_table(ctx, Caller.from_auth(auth), params["database_id"], params["table"])
    return Response(status_code=204)


async def rows(request: Request, ctx: Context, auth: AuthContext) -> Response:
    method = request.method
    body = await _body(request, ctx) if method in ("POST", "PATCH") else b""
    return await service.rows(
        ctx, auth, method=method, database_id=request.path_params["database_id"],
        table=request.path_params["table"], row_id=request.path_params.get("row_id"),
        query=request.query_params.multi_items(), headers=request.headers, body=body,
    )


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]

ROUTES = [
    Route("/db/v1", _endpoint({"GET": databases}), methods=ALL_METHODS),
    Route("/db/v1/", _endpoint({"GET": databases}), methods=ALL_METHODS),
    Route("/db/v1/{database_id}/tables", _endpoint({"GET": list_tables, "POST": create_table}), methods=ALL_METHODS),
    Route("/db/v1/{database_id}/tables/{table}", _endpoint({"GET": get_table, "DELETE": drop_table}),
          methods=ALL_METHODS),
    Route("/db/v1/{database_id}/tables/{table}/rows", _endpoint({"GET": rows, "HEAD": rows, "POST": rows}),
          methods=ALL_METHODS),
    Route("/db/v1/{database_id}/tables/{table}/rows/{row_id}",
          _endpoint({"GET": rows, "HEAD": rows, "PATCH": rows, "DELETE": rows}), methods=ALL_METHODS),
    Route("/db/v1/{rest:path}", not_found, methods=ALL_METHODS),
]

SERVICE = Service(name="tables", routes=list(ROUTES))
