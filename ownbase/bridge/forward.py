"""Forwarding to the upstream project: method, headers, body and status verbatim, both bodies
streamed (constant memory), the API keys and tokens swapped for ones the upstream accepts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

import aiohttp
import jwt
from yarl import URL

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
READ_BUFSIZE = 256 * 1024


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


class Reply:
    """An upstream response whose body is still streaming (the raw, still-encoded bytes)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.headers
        self.raw_headers = response.raw_headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UpstreamError(502, f"upstream body broke: {type(exc).__name__}") from None

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UpstreamError(502, f"upstream body broke: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        # A body read to the end gives the connection back to the pool; a cut one closes it.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class Upstream:
    """The client side of the bridge. aiohttp rather than httpx: a quarter of the CPU per forwarded
    request (measured: 0.26 vs 1.09 ms), which is most of the bridge's own cost (bench/bridge.py)."""

    def __init__(self, settings: Settings, keys: KeyRing) -> None:
        self.base = settings.bridge_url.rstrip("/")
        self.creds = Credentials(settings, keys)
        self.retries = settings.bridge_retries
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.bridge_connect_timeout,
                                             sock_read=settings.bridge_read_timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # created inside the running loop
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=500, ttl_dns_cache=60),
                # Bigger reads, fewer sends per MiB streamed; bounded: at most this much per connection.
                read_bufsize=READ_BUFSIZE,
                # Nothing the client did not send: the upstream sees the request as it came.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, path: str, query: str = "") -> str:
        """``path`` is the raw (still percent-encoded) request path."""
        query = self.creds.query(query)
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    async def open(self, method: str, path: str, query: str, raw_headers: list[tuple[bytes, bytes]],
                   body: bytes | AsyncIterator[bytes] | None) -> Reply:
        """Send the request; the response's body is left to stream. Raises UpstreamError."""
        return await self.request(method, self.url(path, query), self.creds.headers(raw_headers), body)

    async def request(self, method: str, url: str, headers: list[tuple[str, str]],
                      body: bytes | AsyncIterator[bytes] | None) -> Reply:
        replayable = body is None or isinstance(body, bytes)
        attempts = 1 + (self.retries if replayable and method in IDEMPOTENT else 0)
        target = URL(url, encoded=True)
        for attempt in range(attempts):
            try:
                response = await self.session.request(method, target, headers=headers, data=body,
                                                      allow_redirects=False)
                return Reply(response)
            except aiohttp.ConnectionTimeoutError as exc:
                error: UpstreamError = UpstreamError(502, f"upstream unavailable: {type(exc).__name__}")
            except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
                raise UpstreamError(504, f"upstream timed out: {type(exc).__name__}") from None
            except aiohttp.ClientConnectorError as exc:
                error = UpstreamError(502, f"upstream unavailable: {type(exc).__name__}")
            except aiohttp.ClientError as exc:
                raise UpstreamError(502, f"upstream failed: {type(exc).__name__}") from None
            if attempt + 1 >= attempts:
                raise error
        raise UpstreamError(502, "upstream unavailable")  # pragma: no cover - the loop returns or raises


def response_headers(response: Reply) -> list[tuple[bytes, bytes]]:
    # CORS headers come from our own middleware; the upstream's would duplicate them.
    return [(k, v) for k, v in response.raw_headers
            if k.decode("latin-1").lower() not in _DROP_RESPONSE
            and not k.lower().startswith(b"access-control-")]


async def relay(response: Reply, send: Send, tee: Callable[[bytes], Awaitable[None]] | None = None,
                gone: asyncio.Event | None = None) -> bool:
    """Stream an upstream response to the client as it arrives (the raw, still-encoded bytes).

    False when the client left first: the rest of the upstream body is not fetched (once a
    client is gone the server's send() no longer pushes back, so nothing else would stop it).
    """
    try:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": response_headers(response)})
        async for chunk in response.aiter_raw():
            if gone is not None and gone.is_set():
                return False
            if tee is not None:
                await tee(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    finally:
        await response.aclose()


async def watch_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]], gone: asyncio.Event) -> None:
    """Set ``gone`` when the client disconnects (only for requests whose body was already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def send_error(send: Send, path: str, status: int, code: str, message: str) -> None:
    body = error_bytes(path, status, code, message)
    if path.startswith("/storage/"):
        status = 400 if status < 500 and status != 413 else status
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
