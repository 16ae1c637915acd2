"""Forwarding to the upstream project: method, headers, body and status verbatim, both bodies
streamed (constant memory), the API keys and tokens swapped for ones the upstream accepts."""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

import httpx
import jwt

from ownbase.http.errors import error_bytes
from ownbase.keys import KeyRing, TokenError
from ownbase.settings import Settings

log = logging.getLogger("ownbase.bridge")

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

# Hop-by-hop headers (RFC 9110 7.6.1) and ones this process sets itself.
_DROP_REQUEST = {b"host", b"connection", b"keep-alive", b"proxy-authorization", b"proxy-connection",
                 b"te", b"trailer", b"transfer-encoding", b"upgrade", b"x-forwarded-for"}
_DROP_RESPONSE = {"connection", "keep-alive", "proxy-authenticate", "te", "trailer", "transfer-encoding",
                  "upgrade", "x-request-id", "server", "date"}
IDEMPOTENT = {"GET", "HEAD", "OPTIONS"}


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer in time (status: 502 or 504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Credentials:
    """Our API keys -> the upstream's; our user tokens -> tokens the upstream verifies."""

    def __init__(self, settings: Settings, keys: KeyRing) -> None:
        self.keys = keys
        self.secret = settings.bridge_jwt_secret
        self.swap: dict[str, str] = {}
        if settings.bridge_anon_key:
            self.swap[keys.anon_key] = settings.bridge_anon_key
            self.swap.update({k: settings.bridge_anon_key for k in keys.publishable_keys})
        if settings.bridge_service_key:
            self.swap[keys.service_role_key] = settings.bridge_service_key
            self.swap.update({k: settings.bridge_service_key for k in keys.secret_keys})
        self.service_key = settings.bridge_service_key or keys.service_role_key

    def token(self, value: str) -> str:
        swapped = self.swap.get(value)
        if swapped is not None:
            return swapped
        if not self.secret or value.count(".") != 2:
            return value  # the upstream's own token (auth still upstream) or a shared secret
        try:
            header = jwt.get_unverified_header(value)
        except jwt.PyJWTError:
            return value
        if header.get("alg") != self.keys.signing_algorithm or header.get("kid") != self.keys.signing_kid:
            return value
        try:
            claims = self.keys.verify(value)
        except TokenError:
            return value  # the upstream refuses it just as we would
        # A token we issued: the same identity and expiry, signed with the project's secret.
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def headers(self, raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for key, value in raw:
            if key in _DROP_REQUEST:
                continue
            text = value.decode("latin-1")
            if key == b"apikey":
                text = self.token(text)
            elif key == b"authorization":
                scheme, _, tok = text.partition(" ")
                if scheme.lower() == "bearer" and tok:
                    text = f"{scheme} {self.token(tok.strip())}"
            out.append((key.decode("latin-1"), text))
        return out

    def query(self, query: str) -> str:
        if "apikey=" not in query:
            return query
        pairs = parse_qsl(query, keep_blank_values=True)
        return urlencode([(k, self.token(v) if k == "apikey" else v) for k, v in pairs])


class Upstream:
    def __init__(self, settings: Settings, keys: KeyRing) -> None:
        self.base = settings.bridge_url.rstrip("/")
        self.creds = Credentials(settings, keys)
        self.retries = settings.bridge_retries
        timeout = httpx.Timeout(settings.bridge_read_timeout, connect=settings.bridge_connect_timeout)
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                        limits=httpx.Limits(max_connections=500, max_keepalive_connections=100))

    async def close(self) -> None:
        await self.client.aclose()

    def url(self, path: str, query: str = "") -> str:
        query = self.creds.query(query)
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    async def open(self, method: str, path: str, query: str, raw_headers: list[tuple[bytes, bytes]],
                   body: bytes | AsyncIterator[bytes] | None) -> httpx.Response:
        """Send the request; the response's body is left to stream. Raises UpstreamError."""
        request = self.client.build_request(method, self.url(path, query),
                                            headers=self.creds.headers(raw_headers), content=body)
        replayable = body is None or isinstance(body, bytes)
        attempts = 1 + (self.retries if replayable and method in IDEMPOTENT else 0)
        for attempt in range(attempts):
            try:
                return await self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt + 1 >= attempts:
                    raise UpstreamError(502, f"upstream unavailable: {type(exc).__name__}") from None
            except httpx.TimeoutException as exc:
                raise UpstreamError(504, f"upstream timed out: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise UpstreamError(502, f"upstream failed: {type(exc).__name__}") from None
        raise UpstreamError(502, "upstream unavailable")  # pragma: no cover - loop always returns/raises


def response_headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    # CORS headers come from our own middleware; the upstream's would duplicate them.
    return [(k, v) for k, v in response.headers.raw
            if k.decode("latin-1").lower() not in _DROP_RESPONSE
            and not k.lower().startswith(b"access-control-")]


async def relay(response: httpx.Response, send: Send,
                tee: Callable[[bytes], Awaitable[None]] | None = None) -> None:
    """Stream an upstream response to the client as it arrives (the raw, still-encoded bytes)."""
    try:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": response_headers(response)})
        async for chunk in response.aiter_raw():
            if tee is not None:
                await tee(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()


async def send_error(send: Send, path: str, status: int, code: str, message: str) -> None:
    body = error_bytes(path, status, code, message)
    if path.startswith("/storage/"):
        status = 400 if status < 500 and status != 413 else status
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
