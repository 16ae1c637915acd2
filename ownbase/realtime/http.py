"""HTTP broadcast: ``POST /realtime/v1/api/broadcast`` (batch) and
``POST /realtime/v1/api/broadcast/<topic>/events/<event>`` (single, JSON or raw bytes) -> 202."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownbase.http.auth_context import CredentialError, resolve
from ownbase.realtime import authz, errors
from ownbase.realtime.bus import Broadcast
from ownbase.realtime.serializer import loads
from ownbase.realtime.tokens import Identity
from ownbase.realtime.topics import hub_key

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.realtime.hub import Hub

MAX_BATCH = 1000


def _caller(ctx: "Context", request: Request) -> Identity | None:
    try:
        auth = resolve(ctx.keys, request.headers, request.query_params.get("apikey"))
    except CredentialError:
        return None
    exp = auth.claims.get("exp")
    return Identity(auth.role, dict(auth.claims), auth.token or "", float(exp) if isinstance(exp, (int, float)) else None)


async def _send(ctx: "Context", hub: "Hub", ident: Identity, topic: str, event: str, payload: Any,
                private: bool, meta: dict[str, Any] | None = None) -> None:
    if private and not await authz.can_write(ctx.db, ident, topic, "broadcast"):
        return  # Supabase drops unauthorised private messages silently (still 202)
    message: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload}
    if meta:
        message["meta"] = meta
    await hub.bus.publish(Broadcast(hub_key("realtime:" + topic, private), message))


def _limit(ctx: "Context", request: Request) -> int:
    return ctx.settings.realtime_max_message_bytes


async def broadcast_batch(request: Request) -> Response:
    ctx: "Context" = request.app.state.ctx
    hub: "Hub" = ctx.state["realtime"]
    ident = _caller(ctx, request)
    if ident is None:
        return JSONResponse(errors.HTTP_UNAUTHORIZED, status_code=401)
    body = await request.body()
    try:
        data = loads(body) if body else None
    except ValueError:
        return JSONResponse({"errors": {"messages": ["invalid JSON body"]}}, status_code=422)
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list):
        return JSONResponse({"errors": {"messages": ["can't be blank"]}}, status_code=422)
    if len(messages) > MAX_BATCH:
        return JSONResponse({"message": "Too many messages to broadcast, please reduce the batch size"},
                            status_code=429)
    problems: list[Any] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            problems.append({"index": i, "message": "must be an object"})
            continue
        missing = [k for k in ("topic", "event", "payload") if k not in msg or msg[k] is None]
        if missing:
            problems.append({k: ["can't be blank"] for k in missing})
    if len(body) > _limit(ctx, request):
        problems.append({"payload": [errors.PAYLOAD_TOO_LARGE]})
    if problems:
        return JSONResponse({"errors": {"messages": problems}}, status_code=422)
    for msg in messages:
        meta = {"id": str(msg["id"])} if msg.get("id") is not None else None
        await _send(ctx, hub, ident, str(msg["topic"]), str(msg["event"]), msg["payload"],
                    bool(msg.get("private")), meta)
    return Response(status_code=202)


async def broadcast_single(request: Request) -> Response:
    ctx: "Context" = request.app.state.ctx
    hub: "Hub" = ctx.state["realtime"]
    ident = _caller(ctx, request)
    if ident is None:
        return JSONResponse(errors.HTTP_UNAUTHORIZED, status_code=401)
    topic = request.path_params["topic"]
    event = request.path_params["event"]
    private = request.query_params.get("private", "false").lower() == "true"
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > _limit(ctx, request):
        return JSONResponse({"errors": {"payload": [errors.PAYLOAD_TOO_LARGE]}}, status_code=422)
    payload: Any
    if ctype == "application/json":
        try:
            payload = loads(body)
        except ValueError:
            return JSONResponse({"errors": {"payload": ["invalid JSON body"]}}, status_code=422)
    elif ctype == "application/octet-stream":
        payload = body
    else:
        return JSONResponse({"message": "Unsupported media type"}, status_code=415)
    await _send(ctx, hub, ident, topic, event, payload, private)
    return Response(status_code=202)
