"""Per-request decisions of the bridge: forward, serve locally, or serve locally and fall back."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, quote

from ownbase.bridge import lazy, mirror
from ownbase.bridge.forward import Upstream, UpstreamError, relay, send_error, watch_disconnect
from ownbase.bridge.routing import Routes, Target
from ownbase.bridge.stats import Stats

log = logging.getLogger("ownbase.bridge")

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
HELD_ERROR_BYTES = 64 * 1024  # local error bodies are small; a larger one is passed through as is
_REST_MISSING = {"PGRST205", "PGRST202", "42P01", "42883"}
_AUTH_MISSING = {"user_not_found", "refresh_token_not_found", "session_not_found"}
_READ_POSTS = ("/storage/v1/object/list/", "/storage/v1/object/sign/", "/storage/v1/object/info/")


class BodyTooLarge(Exception):
    pass


def _is_upload(method: str, path: str) -> bool:
    if not path.startswith("/storage/v1/"):
        return False
    if path.startswith("/storage/v1/upload/resumable"):
        return True
    rest = path[len("/storage/v1/object/"):] if path.startswith("/storage/v1/object/") else None
    if rest is None or method not in ("POST", "PUT"):
        return False
    return not rest.startswith(("list/", "sign/", "move", "copy", "info/", "public/", "authenticated/"))


def raw_path(scope: dict[str, Any]) -> str:
    """The path as the client encoded it: forwarded byte for byte, never re-quoted."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else quote(scope["path"])


def object_of(path: str) -> tuple[str, str] | None:
    """(bucket, name) of an object download path, else None."""
    if not path.startswith("/storage/v1/object/"):
        return None
    parts = path[len("/storage/v1/object/"):].split("/")
    if parts and parts[0] in ("public", "authenticated", "sign"):
        parts = parts[1:]
    elif parts and parts[0] in ("info", "list", "upload", "move", "copy"):
        return None
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        return None
    return parts[0], "/".join(parts[1:])


def wants_fallback(service: str, status: int, body: bytes) -> bool:
    """Local could not serve this (not migrated yet, or failed): the upstream should answer."""
    if status >= 500:
        return True
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if service == "rest":
        return data.get("code") in _REST_MISSING
    if service == "storage":
        return status == 404 or str(data.get("statusCode")) == "404"
    if service == "auth":
        return data.get("error_code") in _AUTH_MISSING
    return False


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def replay_receive(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as servers do

    return again


async def stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body"):
            return


class Held:
    """A send() that holds back a response whose status may mean "try the upstream"."""

    def __init__(self, send: Send, hold: Callable[[int], bool],
                 on_start: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.send = send
        self.hold = hold
        self.on_start = on_start
        self.status = 0
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.passed = False  # something went to the client: no fallback possible any more

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.hold(self.status):
                self.start = message
                return
            if self.on_start is not None:
                await self.on_start(self.status)
            self.passed = True
            await self.send(message)
            return
        if self.start is not None and not self.passed:
            self.chunks.append(message.get("body", b""))
            self.size += len(self.chunks[-1])
            if self.size > HELD_ERROR_BYTES:
                await self.flush(more=bool(message.get("more_body")))
            return
        await self.send(message)

    @property
    def held(self) -> bool:
        return self.start is not None and not self.passed

    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def flush(self, more: bool = False) -> None:
        assert self.start is not None
        self.passed = True
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": self.body(), "more_body": more})


class Bridge:
    def __init__(self, ctx: Any, routes: Routes, upstream: Upstream, stats: Stats) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.routes = routes
        self.upstream = upstream
        self.stats = stats
        self.writes = ctx.settings.bridge_writes
        self.mirror: mirror.Mirror | None = None

    # --- entry ---------------------------------------------------------------------------
    async def handle(self, scope: dict[str, Any], receive: Receive, send: Send, target: Target,
                     app: ASGIApp) -> None:
        method, path = scope["method"], scope["path"]
        svc, res, mode = target.service, target.resource, target.mode
        write = method in WRITES and not (svc == "storage" and path.startswith(_READ_POSTS)) and svc != "auth"
        if svc == "realtime" and mode != "upstream":
            mode = "local"  # realtime has nothing to fall back on per request
        if mode == "fallback" and write and self.writes == "upstream":
            mode = "upstream"  # phase A: the upstream still owns the data
        if mode == "upstream":
            self.stats.add(svc, res, "upstream")
            has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
            await self.forward(scope, stream_body(receive) if has_body else None, send, target,
                               receive=None if has_body else receive)
            return
        mirrored = write and self.writes == "mirror" and svc in ("rest", "storage")
        if _is_upload(method, path):
            # Uploads stream straight to the local backend (no second copy to replay from);
            # the mirror re-reads the stored object instead. A bucket not migrated yet: upstream.
            if mode == "fallback" and res and not await self._local_bucket(res):
                self.stats.add(svc, res, "fallback")
                self.stats.add(svc, res, "upstream")
                await self.forward(scope, stream_body(receive), send, target)
                return
            self.stats.add(svc, res, "local")
            sender = Held(send, lambda s: False, self._enqueuer(svc, res, scope, None)) if mirrored else send
            await app(scope, receive, sender)
            return
        if mode == "local" and not mirrored:
            self.stats.add(svc, res, "local")
            await app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.settings.max_body_bytes)
        except BodyTooLarge:
            await send_error(send, path, 413, "request_too_large", "Request body is too large")
            return
        if svc == "auth" and mode == "fallback" and self._password_grant(scope):
            await self.password_sign_in(scope, receive, send, target, body, app)
            return
        fallback = mode == "fallback"
        held = Held(send, (lambda s: s >= 400) if fallback else (lambda s: False),
                    self._enqueuer(svc, res, scope, body) if mirrored else None)
        try:
            await app(scope, replay_receive(body, receive), held)
        except Exception:
            if not fallback or held.passed:
                raise
            log.exception("local failed; the upstream answers: %s %s", method, path)
            held.start = None
        if held.passed:
            self.stats.add(svc, res, "local")
            return
        if held.start is not None and not wants_fallback(svc, held.status, held.body()):
            self.stats.add(svc, res, "local")
            await held.flush()
            return
        self.stats.add(svc, res, "fallback")
        self.stats.add(svc, res, "upstream")
        ok = await self.forward(scope, body, send, target, quiet=held.start is not None, receive=receive)
        if not ok and held.start is not None:
            await held.flush()  # upstream down too: the local answer stands

    def _enqueuer(self, svc: str, res: str, scope: dict[str, Any], body: bytes | None
                  ) -> Callable[[int], Awaitable[None]]:
        async def on_start(status: int) -> None:
            if 200 <= status < 300:
                # Durable before the client hears "done": a crash after this replays, never loses.
                query = scope.get("query_string", b"").decode("latin-1")
                path = raw_path(scope) + (f"?{query}" if query else "")
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                await mirror.enqueue(self.ctx.db.owner, svc, res, scope["method"], path, headers, body)
                if self.mirror is not None:
                    self.mirror.wake.set()
        return on_start

    # --- forwarding ------------------------------------------------------------------------
    async def forward(self, scope: dict[str, Any], body: bytes | AsyncIterator[bytes] | None, send: Send,
                      target: Target, quiet: bool = False, receive: Receive | None = None) -> bool:
        """Forward to the upstream; False (and nothing sent when quiet) if it could not answer."""
        method, path = scope["method"], scope["path"]
        headers = list(scope["headers"])
        request_id = scope.get("state", {}).get("request_id")
        if request_id and not any(k == b"x-request-id" for k, _ in headers):
            headers.append((b"x-request-id", request_id.encode()))  # one id in both projects' logs
        copy_to = self._copy_target(scope, target, quiet)
        if copy_to is not None:
            headers = [(k, v) for k, v in headers if k != b"accept-encoding"]  # store identity bytes
        try:
            response = await self.upstream.open(method, raw_path(scope), scope.get("query_string", b"").decode("latin-1"),
                                                headers, body if method not in ("GET", "HEAD") or body else None)
        except UpstreamError as exc:
            self.stats.add(target.service, target.resource, "upstream_error")
            log.warning("upstream %s for %s %s: %s", exc.status, method, path, exc.message)
            if quiet:
                return False
            code = "upstream_timeout" if exc.status == 504 else "upstream_unavailable"
            await send_error(send, path, exc.status, code, exc.message)
            return True
        if response.status_code >= 500:
            self.stats.add(target.service, target.resource, "upstream_error")
            if quiet:
                await response.aclose()
                return False
        copier = None
        if copy_to is not None and response.status_code == 200:
            copier = await self._start_copy(copy_to, response)
        ok = False
        gone = asyncio.Event()
        watcher = asyncio.create_task(watch_disconnect(receive, gone)) if receive is not None else None
        try:
            ok = await relay(response, send, copier.feed if copier else None, gone)
        except Exception as exc:  # noqa: BLE001 - mid-stream: the client's connection is cut
            self.stats.add(target.service, target.resource, "upstream_error")
            log.warning("upstream stream broke for %s %s: %s", method, path, exc)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            if copier is not None and await copier.finish(ok):
                self.stats.add(target.service, target.resource, "lazy_copy")
        return True

    def _copy_target(self, scope: dict[str, Any], target: Target, quiet: bool) -> tuple[str, str] | None:
        if not quiet or target.service != "storage" or scope["method"] != "GET":
            return None
        if any(k == b"range" for k, _ in scope["headers"]) or "storage" not in self.ctx.state:
            return None
        return object_of(scope["path"])

    async def _local_bucket(self, bucket: str) -> bool:
        return bool(await self.ctx.db.owner.fetchval("select 1 from storage.buckets where id = $1", bucket))

    async def _start_copy(self, where: tuple[str, str], response: Any) -> lazy.ObjectCopy | None:
        from ownbase.storage.service import SERVICE_AUTH, Caller  # storage's public service API

        bucket, name = where
        if not await self._local_bucket(bucket):
            return None
        caller = Caller(auth=SERVICE_AUTH, method="PUT", path=f"/storage/v1/object/{bucket}/{name}")
        return lazy.ObjectCopy(self.ctx.state["storage"], caller, bucket, name,
                               response.headers.get("content-type", "application/octet-stream"),
                               response.headers.get("cache-control", "no-cache"),
                               self.settings.storage_max_file_size)

    # --- auth: lazy user migration on password sign-in ---------------------------------------
    @staticmethod
    def _password_grant(scope: dict[str, Any]) -> bool:
        if scope["method"] != "POST" or scope["path"].rstrip("/") != "/auth/v1/token":
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return query.get("grant_type", [""])[0] == "password"

    async def password_sign_in(self, scope: dict[str, Any], receive: Receive, send: Send, target: Target,
                               body: bytes, app: ASGIApp) -> None:
        held = Held(send, lambda s: s == 400)
        await app(scope, replay_receive(body, receive), held)
        if not held.held:
            self.stats.add("auth", "", "local")
            return
        try:
            creds = json.loads(body)
            email, phone, password = creds.get("email"), creds.get("phone"), creds.get("password")
        except (ValueError, AttributeError):
            email = phone = password = None
        if (not isinstance(password, str) or not password or not isinstance(email or phone, str)
                or await lazy.user_exists(self.ctx.db.owner, email, phone)):
            self.stats.add("auth", "", "local")
            await held.flush()  # known here: the local answer is the answer (local is newer)
            return
        user = await self._upstream_user(scope, body, target)
        if user is None:
            self.stats.add("auth", "", "local")
            await held.flush()
            return
        if await lazy.copy_user(self.ctx.db.owner, user, password, self.settings.auth_bcrypt_cost):
            self.stats.add("auth", "", "lazy_copy")
            log.info("user %s copied from the upstream on sign-in", user.get("id"))
        self.stats.add("auth", "", "fallback")
        await app(scope, replay_receive(body, receive), send)  # now a local session, local tokens

    async def _upstream_user(self, scope: dict[str, Any], body: bytes, target: Target) -> dict[str, Any] | None:
        try:
            response = await self.upstream.open("POST", raw_path(scope), scope.get("query_string", b"").decode("latin-1"),
                                                list(scope["headers"]), body)
        except UpstreamError as exc:
            self.stats.add("auth", "", "upstream_error")
            log.warning("upstream sign-in check failed: %s", exc.message)
            return None
        try:
            if response.status_code != 200:
                if response.status_code >= 500:
                    self.stats.add("auth", "", "upstream_error")
                return None
            data = json.loads(await response.aread())
        except ValueError:
            return None
        finally:
            await response.aclose()
        user = data.get("user") if isinstance(data, dict) else None
        return user if isinstance(user, dict) and user.get("id") else None
