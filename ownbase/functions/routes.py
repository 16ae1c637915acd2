"""/functions/v1/{name}[/{path}]: what supabase-js / supabase-py `functions.invoke` call.

Errors: the function's own non-2xx passes through unchanged (the client's FunctionsHttpError); when
the relay itself fails (target unreachable, timeout, a malformed answer) the response carries
``x-relay-error: true`` (FunctionsRelayError), as Supabase's relay does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ownbase.functions.config import Function, FunctionsConfigError, load_functions
from ownbase.functions.event import BadResponse, Reply, build_event
from ownbase.functions.targets import (
    HOP,
    FunctionFailed,
    LambdaInvoker,
    RelayError,
    UrlProxy,
    run_command,
)
from ownbase.keys import TokenError
from ownbase.service import Service

if TYPE_CHECKING:
    from ownbase.context import Context

log = logging.getLogger("ownbase.functions")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# The browser gets the middleware's CORS headers; a function's own would duplicate them.
DROPPED = HOP | {"access-control-allow-origin", "access-control-allow-credentials"}


class State:
    def __init__(self, ctx: Context) -> None:
        self.functions = load_functions(ctx.settings.functions, ctx.settings.data_dir)
        self.lambdas = LambdaInvoker(ctx.settings.functions_timeout)
        self.proxy = UrlProxy(ctx.settings.functions_timeout)


def _error(status: int, code: str, message: str, relay: bool = False) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status,
                        headers={"x-relay-error": "true"} if relay else None)


def _caller(request: Request, ctx: Context, fn: Function) -> tuple[dict[str, Any] | None, JSONResponse | None]:
    """Verified claims of the caller's JWT (Supabase's verify_jwt); public functions skip it."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        if fn.public:
            return None, None
        return None, _error(401, "UNAUTHORIZED_NO_AUTH_HEADER", "Missing authorization header")
    try:
        return ctx.keys.verify(token), None
    except TokenError as exc:
        if fn.public:
            return None, None
        code = "UNAUTHORIZED_INVALID_JWT_FORMAT" if exc.reason == "invalid" else "UNAUTHORIZED_INVALID_JWT"
        return None, _error(401, code, "Invalid JWT")


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(reply: Reply, method: str) -> Response:
    headers = [(k, v) for k, v in reply.headers if k not in DROPPED]
    response = Response(b"" if method == "HEAD" else reply.body, status_code=reply.status)
    response.raw_headers = [(b"content-length", str(len(reply.body)).encode())] + [
        (k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers]
    return response


async def invoke(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    state: State | None = ctx.state.get("functions")
    name = request.path_params["name"]
    fn = state.functions.get(name) if state is not None else None
    if fn is None:
        return _error(404, "NOT_FOUND", "Requested function was not found")
    claims, refused = _caller(request, ctx, fn)
    if refused is not None:
        return refused
    rest = request.path_params.get("rest", "")
    query = request.url.query
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    timeout = ctx.settings.functions_timeout
    try:
        if fn.kind == "url":
            upstream = await state.proxy.open(fn.target, rest, request.method, query, headers,
                                              request.stream())
            response = StreamingResponse(_relay(upstream), status_code=upstream.status_code)
            # The upstream's own headers (content-encoding too: its raw bytes pass through).
            response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1", "replace"))
                                    for k, v in upstream.headers.multi_items() if k.lower() not in DROPPED]
            return response
        body = await _bounded_body(request, ctx.settings.functions_max_body_bytes)
        if body is None:
            return _error(413, "PAYLOAD_TOO_LARGE", "The request body is larger than "
                          f"{ctx.settings.functions_max_body_bytes} bytes")
        event = build_event(name=name, method=request.method, path=f"/{name}" + (f"/{rest}" if rest else ""),
                            query=query, headers=headers, body=body,
                            source_ip=request.scope.get("state", {}).get("client_ip", ""), claims=claims)
        if fn.kind == "lambda":
            reply = await state.lambdas.invoke(fn.target, fn.region, event, timeout)
        else:
            reply = await run_command(fn.target, event, timeout, 2 * ctx.settings.functions_max_body_bytes)
        return _reply(reply, request.method)
    except RelayError as exc:
        log.warning("function %s: %s", name, exc.message)
        return _error(exc.status, exc.code, exc.message, relay=True)
    except BadResponse as exc:
        log.warning("function %s answered badly: %s", name, exc)
        return _error(502, "BAD_RESPONSE", f"The function's response could not be read: {exc}", relay=True)
    except FunctionFailed as exc:
        return _error(500, "WORKER_ERROR", exc.message)
    except ClientDisconnect:
        return Response(status_code=400)


async def _relay(upstream: Any) -> AsyncIterator[bytes]:
    """The upstream's bytes; its connection is released however the stream ends (a client that
    goes away included, where a background task would not run)."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()


async def startup(ctx: Context) -> None:
    try:
        ctx.state["functions"] = State(ctx)
    except FunctionsConfigError as exc:
        raise RuntimeError(f"OWNBASE_FUNCTIONS: {exc}") from None


async def shutdown(ctx: Context) -> None:
    state: State | None = ctx.state.pop("functions", None)
    if state is not None:
        await state.lambdas.close()
        await state.proxy.close()


SERVICE = Service(
    "functions",
    routes=[Route("/functions/v1/{name}", invoke, methods=METHODS),
            Route("/functions/v1/{name}/{rest:path}", invoke, methods=METHODS)],
    startup=startup, shutdown=shutdown,
)
