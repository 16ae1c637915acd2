"""/rest/v1: thin HTTP glue around the engine (auth → schema choice → engine.handle)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from ownbase.context import Context
from ownbase.http.auth_context import AuthContext, CredentialError, resolve, role_refusal
from ownbase.rest import engine, errors
from ownbase.rest.openapi import openapi_response
from ownbase.service import Service

ALL = ["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "TRACE", "CONNECT"]


async def _auth(ctx: Context, request: Request) -> AuthContext:
    try:
        return resolve(ctx.keys, request.headers, request.query_params.get("apikey"))
    except CredentialError as exc:
        if exc.reason == "missing":
            raise errors.missing_key() from None
        if exc.reason == "role":
            status, code, message = await role_refusal(ctx.db.api, exc.role)
            raise errors.ApiError(status, code, message, headers={"WWW-Authenticate": "Bearer"}) from None
        raise errors.jwt_error(exc.message, exc.reason) from None


def _schema(ctx: Context, request: Request) -> str:
    exposed = engine.exposed_schemas(ctx)
    header = "accept-profile" if request.method in ("GET", "HEAD") else "content-profile"
    wanted = request.headers.get(header)
    if wanted is None:
        return exposed[0]
    if wanted not in exposed:
        raise errors.invalid_schema(wanted, exposed)
    return wanted


def _query(request: Request) -> list[tuple[str, str]]:
    # `apikey` may travel in the query string (Supabase's gateway accepts it); it is not a filter.
    return [(k, v) for k, v in request.query_params.multi_items() if k != "apikey"]


async def _handle(request: Request, relation: str, rpc: bool) -> Response:
    ctx: Context = request.app.state.ctx
    try:
        auth = await _auth(ctx, request)
        schema = _schema(ctx, request)
    except errors.ApiError as exc:
        return exc.response()
    body = await request.body() if request.method in ("POST", "PATCH", "PUT", "DELETE") else b""
    return await engine.handle(ctx, method=request.method, schema=schema, relation=relation,
                               query=_query(request), headers=request.headers, body=body, auth=auth, rpc=rpc)


async def relation(request: Request) -> Response:
    return await _handle(request, request.path_params["relation"], False)


async def rpc(request: Request) -> Response:
    return await _handle(request, request.path_params["function"], True)


async def root(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    try:
        auth = await _auth(ctx, request)
        schema = _schema(ctx, request)
        return await openapi_response(ctx, request, schema, auth)
    except errors.ApiError as exc:
        return exc.response()


async def invalid(request: Request) -> Response:
    return errors.invalid_path().response()


async def _startup(ctx: Context) -> None:
    await engine.start(ctx)


async def _shutdown(ctx: Context) -> None:
    await engine.stop(ctx)


SERVICE = Service(
    name="rest",
    routes=[
        Mount("/rest/v1", routes=[
            Route("/", root, methods=["GET", "HEAD"]),
            Route("/rpc/{function}", rpc, methods=ALL),
            Route("/{relation}", relation, methods=ALL),
            Route("/{rest:path}", invalid, methods=ALL),
        ]),
        Route("/rest/v1", root, methods=["GET", "HEAD"]),
    ],
    startup=_startup,
    shutdown=_shutdown,
)
