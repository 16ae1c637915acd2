"""/metrics on the API port behind OWNBASE_METRICS_TOKEN, or on its own port (OWNBASE_METRICS_PORT)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ownbase.ops.metrics import CONTENT_TYPE, Metrics
from ownbase.service import Service

if TYPE_CHECKING:
    from ownbase.context import Context

log = logging.getLogger("ownbase.metrics")
HEADER_LIMIT = 8192
HEADER_SECONDS = 5.0


def metrics_enabled(settings: object) -> bool:
    return bool(getattr(settings, "metrics_token", "") or getattr(settings, "metrics_port", 0))


def _metrics(ctx: Context | None) -> Metrics | None:
    return None if ctx is None else ctx.state.get("metrics")


async def metrics_endpoint(request: Request) -> Response:
    ctx = getattr(request.app.state, "ctx", None)
    metrics = _metrics(ctx)
    token = ctx.settings.metrics_token if ctx is not None else ""
    if metrics is None or not token:
        # Off unless a token is set: the public listener never serves metrics without one.
        return JSONResponse({"message": "Not found"}, status_code=404)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return JSONResponse({"message": "metrics need Authorization: Bearer <OWNBASE_METRICS_TOKEN>"},
                            status_code=401, headers={"www-authenticate": "Bearer"})
    return Response(await metrics.render(), media_type=CONTENT_TYPE)


async def _serve_port(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, metrics: Metrics) -> None:
    """A minimal HTTP/1.0 responder: GET /metrics, anything else 404; bounded header read."""
    try:
        async with asyncio.timeout(HEADER_SECONDS):
            head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0] in (b"GET", b"HEAD") and line[1].split(b"?")[0] == b"/metrics":
            body, status = await metrics.render(), b"200 OK"
        else:
            body, status = b"not found\n", b"404 Not Found"
        writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Type: " + CONTENT_TYPE.encode()
                     + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                     + (body if line[:1] != [b"HEAD"] else b""))
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def startup(ctx: Context) -> None:
    metrics = _metrics(ctx)
    if metrics is None:
        return
    metrics.ctx = ctx
    port = ctx.settings.metrics_port
    if port:
        # reuse_port: with --workers N every process binds it (each answers with its own numbers).
        server = await asyncio.start_server(lambda r, w: _serve_port(r, w, metrics), ctx.settings.metrics_host,
                                            port, reuse_port=True, limit=HEADER_LIMIT)
        ctx.state["metrics_server"] = server


async def shutdown(ctx: Context) -> None:
    server = ctx.state.pop("metrics_server", None)
    if server is not None:
        server.close()
        await server.wait_closed()


SERVICE = Service("ops", routes=[Route("/metrics", metrics_endpoint, methods=["GET"])],
                  startup=startup, shutdown=shutdown)
