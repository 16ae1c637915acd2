"""Outermost ASGI middleware: request id, client address, CORS, general rate limits, the gateway's
API key check, JSON access logs and the last-resort 500 (JSON with the request id, never a stack
trace)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any, Awaitable, Callable

from ownbase.http.client_ip import client_ip
from ownbase.http.errors import error_bytes, generic_error
from ownbase.http.gateway import KeyCheck, KeyProblem, guarded, query_apikey
from ownbase.keys import unverified_claims

log = logging.getLogger("ownbase.access")
errlog = logging.getLogger("ownbase.error")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOWED_HEADERS = (
    "authorization, x-client-info, apikey, content-type, x-supabase-api-version, accept-profile, "
    "content-profile, prefer, range, range-unit, x-upsert, x-metadata, cache-control, accept, "
    "accept-encoding, x-request-id, upload-length, upload-offset, upload-metadata, tus-resumable, "
    "upload-defer-length, upload-concat, x-signature, if-none-match, if-modified-since, "
    "content-disposition, x-region"
)
EXPOSED_HEADERS = (
    "Content-Range, X-Total-Count, Link, X-Request-Id, Content-Location, Location, Range-Unit, "
    "Preference-Applied, Upload-Offset, Upload-Length, Tus-Resumable, Upload-Expires, ETag, "
    "Content-Length, Content-Type, Content-Disposition, x-sb-error-code, X-Supabase-Api-Version, "
    "Retry-After"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class OwnbaseMiddleware:
    def __init__(self, app: ASGIApp, get_ctx: Callable[[], Any]) -> None:
        self.app = app
        self.get_ctx = get_ctx
        self._keycheck: KeyCheck | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ctx = self.get_ctx()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        peer = scope.get("client")[0] if scope.get("client") else None
        networks = ctx.trusted_networks if ctx is not None else ()
        ip = client_ip(peer, _header(scope, b"x-forwarded-for"), networks)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = ip
        path: str = scope.get("path", "")

        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        origin = _header(scope, b"origin")
        method = scope["method"]
        if method == "OPTIONS" and origin and _header(scope, b"access-control-request-method"):
            # A function's own request headers are its business (Supabase's functions answer their
            # preflight themselves): echo what the browser asks for under /functions/v1.
            asked = _header(scope, b"access-control-request-headers") if path.startswith("/functions/v1/") else None
            await self._preflight(ctx, origin, send, request_id, asked)
            return

        start = time.perf_counter()
        status_holder = {"status": 500, "started": False}
        cors = self._cors_headers(ctx, origin)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(cors)
                message = {**message, "headers": headers}
            await send(message)

        try:
            limited = await self._rate_limited(ctx, scope, ip, path)
            if limited is not None:
                await self._send_error(send_wrapper, path, 429, "over_request_rate_limit",
                                       "Request rate limit reached",
                                       [(b"retry-after", str(limited).encode())])
            elif (problem := self._key_problem(ctx, scope, method, path)) is not None:
                await self._send_error(send_wrapper, path, problem.status, problem.code_for(path),
                                       problem.message, [(b"www-authenticate", b"Bearer")], hint=problem.hint)
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last resort: log with the id, answer JSON
            generic = generic_error(path, exc, request_id=request_id)
            if generic is not None:
                # Not a bug: the database is unreachable (503, clients retry, as /rest/v1 answers)
                # or the input could not be processed (400: nested too deeply, refused as data).
                errlog.warning("request failed: %s", type(exc).__name__,
                               extra={"request_id": request_id, "path": path})
                if not status_holder["started"]:
                    status, body = generic
                    await self._send(send_wrapper, status, body,
                                     [(b"retry-after", b"1")] if status == 503 else [])
                return
            errlog.exception("unhandled error", extra={"request_id": request_id, "path": path})
            if not status_holder["started"]:
                await self._send_error(send_wrapper, path, 500, "unexpected_failure",
                                       "Internal server error", [], request_id=request_id)
        finally:
            duration_ms = round((time.perf_counter() - start) * 1000, 2)
            status = status_holder["status"]
            sink = getattr(ctx, "access_sink", None)
            logged = log.isEnabledFor(logging.INFO)
            if sink is not None or logged:
                authorization = _header(scope, b"authorization") or ""
                apikey = _header(scope, b"apikey") or ""
                if sink is not None:
                    sink(request_id, method, path, status, duration_ms, ip, authorization, apikey)
                if logged:
                    log.info("request", extra={
                        "request_id": request_id, "method": method, "path": path, "status": status,
                        "duration_ms": duration_ms, "client_ip": ip, "role": claimed_role(authorization, apikey),
                    })

    async def _rate_limited(self, ctx: Any, scope: Scope, ip: str, path: str) -> int | None:
        if ctx is None or path in ("/health", "/ready"):
            return None
        settings = ctx.settings
        if settings.rate_limit_ip_per_minute:
            d = await ctx.limiter.hit(f"ip:{ip}", settings.rate_limit_ip_per_minute, 60)
            if not d.allowed:
                return d.retry_after
        if settings.rate_limit_user_per_minute:
            auth = _header(scope, b"authorization") or ""
            token = auth.partition(" ")[2]
            if token.count(".") == 2:
                sub = unverified_claims(token).get("sub")
                if isinstance(sub, str) and sub:
                    # Keyed by the unverified sub only to share one budget; the token itself
                    # is verified by the service before anything is served.
                    d = await ctx.limiter.hit(f"user:{sub}:{ip}", settings.rate_limit_user_per_minute, 60)
                    if not d.allowed:
                        return d.retry_after
        return None

    def _key_problem(self, ctx: Any, scope: Scope, method: str, path: str) -> KeyProblem | None:
        if ctx is None or not guarded(method, path):
            return None
        if self._keycheck is None or self._keycheck.keys is not ctx.keys:
            self._keycheck = KeyCheck(ctx.keys)
        apikey = _header(scope, b"apikey") or query_apikey(scope.get("query_string", b""))
        auth = _header(scope, b"authorization") or ""
        scheme, _, token = auth.strip().partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        return self._keycheck.problem(apikey, bearer, _header(scope, b"user-agent"), _header(scope, b"origin"))

    @staticmethod
    def _allowed_origin(ctx: Any, origin: str | None) -> str | None:
        if origin is None:
            return None
        origins = ctx.settings.cors_origins if ctx is not None else ["*"]
        if "*" in origins:
            return "*"
        return origin if origin in origins else None

    def _cors_headers(self, ctx: Any, origin: str | None) -> list[tuple[bytes, bytes]]:
        allowed = self._allowed_origin(ctx, origin)
        if allowed is None:
            return []
        headers = [
            (b"access-control-allow-origin", allowed.encode()),
            (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
        ]
        if allowed != "*":
            headers.append((b"vary", b"Origin"))
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def _preflight(self, ctx: Any, origin: str, send: Send, request_id: str,
                         asked: str | None = None) -> None:
        allowed = self._allowed_origin(ctx, origin)
        headers = [(b"x-request-id", request_id.encode()), (b"content-length", b"0")]
        if allowed is not None:
            headers += [
                (b"access-control-allow-origin", allowed.encode()),
                (b"access-control-allow-methods", b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
                (b"access-control-allow-headers",
                 (ALLOWED_HEADERS + (", " + asked if asked else "")).encode("latin-1")),
                (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
                (b"access-control-max-age", b"86400"),
            ]
            if allowed != "*":
                headers += [(b"vary", b"Origin"), (b"access-control-allow-credentials", b"true")]
        await send({"type": "http.response.start", "status": 204 if allowed else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send_error(send: Send, path: str, status: int, code: str, message: str,
                          headers: list[tuple[bytes, bytes]], **extra: Any) -> None:
        await OwnbaseMiddleware._send(send, status, error_bytes(path, status, code, message, **extra), headers)

    @staticmethod
    async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()), *headers],
        })
        await send({"type": "http.response.body", "body": body})


def claimed_role(authorization: str, apikey: str) -> str:
    """The role the request's token names (bearer, else apikey), for the access log. Unverified
    here: the service verifies it before serving, and a refused token gets a 401 in the same line."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        token = apikey
    if token.count(".") != 2:
        return "anon" if token.startswith("sb_publishable_") else "service_role" if token.startswith("sb_secret_") else ""
    role = unverified_claims(token.strip()).get("role")
    return role if isinstance(role, str) else ""
