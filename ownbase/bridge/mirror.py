"""The way back: writes served locally are replayed on the upstream, in order, from a durable
queue in PostgreSQL. A failed replay waits (exponential backoff) and blocks the ones behind it, so
the upstream sees writes in the order they happened; one the upstream refuses (4xx) is kept as
'rejected' for an operator, never dropped."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ownbase.bridge.forward import Upstream, UpstreamError
from ownbase.bridge.stats import Stats

log = logging.getLogger("ownbase.bridge")

# Headers that shape a write; everything else (client keys, tokens) is replaced by the service key.
KEPT_HEADERS = ("content-type", "prefer", "content-profile", "accept-profile", "x-upsert", "cache-control",
                "x-metadata")
_LOCK = 0x0B71D6E  # advisory lock: one draining process at a time keeps the order
BATCH = 50

_DUE = """
select id, service, resource, method, path, headers, body, attempts from ownbase_bridge.mirror_queue
where state = 'pending' order by id limit $1
"""


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in KEPT_HEADERS if k in headers}


async def enqueue(pool: Any, service: str, resource: str, method: str, path: str, headers: dict[str, str],
                  body: bytes | None) -> None:
    await pool.execute(
        "insert into ownbase_bridge.mirror_queue (service, resource, method, path, headers, body) "
        "values ($1, $2, $3, $4, $5::jsonb, $6)",
        service, resource, method, path, json.dumps(kept_headers(headers)), body)


class Mirror:
    def __init__(self, pool: Any, upstream: Upstream, stats: Stats, local_url: str, local_service_key: str,
                 max_backoff: int) -> None:
        self.pool = pool
        self.upstream = upstream
        self.stats = stats
        self.local_url = local_url.rstrip("/")
        self.local_key = local_service_key
        self.max_backoff = max_backoff
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.drain()
            except Exception:  # noqa: BLE001 - the queue is durable; try again shortly
                log.exception("mirror queue drain failed")
                busy = False
            if not busy:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                except TimeoutError:
                    pass

    async def drain(self) -> bool:
        """Replay due entries in order; True when something was sent (more may be waiting)."""
        async with self.pool.acquire() as conn:
            # Each outcome commits on its own, so a crash mid-batch replays at most one write again.
            if not await conn.fetchval("select pg_try_advisory_lock($1)", _LOCK):
                return False
            try:
                return await self._drain(conn)
            finally:
                await conn.execute("select pg_advisory_unlock($1)", _LOCK)

    async def _drain(self, conn: Any) -> bool:
        rows = await conn.fetch(_DUE, BATCH)
        sent = False
        for row in rows:
            if await conn.fetchval("select next_attempt > now() from ownbase_bridge.mirror_queue where id = $1",
                                   row["id"]):
                return sent  # the head waits for its retry: nothing behind it may overtake
            error, refused = await self.replay(row)
            if error is None:
                await conn.execute("delete from ownbase_bridge.mirror_queue where id = $1", row["id"])
                self.stats.add(row["service"], row["resource"], "mirrored")
                sent = True
            elif refused:
                await conn.execute("update ownbase_bridge.mirror_queue set state = 'rejected', last_error = $2, "
                                   "attempts = attempts + 1 where id = $1", row["id"], error)
                log.error("mirror write refused by the upstream, kept as rejected: %s %s: %s",
                          row["method"], row["path"], error)
            else:
                delay = min(self.max_backoff, 2 ** min(row["attempts"], 20))
                await conn.execute(
                    "update ownbase_bridge.mirror_queue set attempts = attempts + 1, last_error = $2, "
                    "next_attempt = now() + make_interval(secs => $3) where id = $1", row["id"], error, delay)
                self.stats.add(row["service"], row["resource"], "upstream_error")
                log.warning("mirror write failed (retry in %ss): %s %s: %s", delay, row["method"], row["path"],
                            error)
                return sent
        return sent

    async def replay(self, row: Any) -> tuple[str | None, bool]:
        """(error, refused): error None on success; refused when the upstream said 4xx."""
        headers = json.loads(row["headers"]) if isinstance(row["headers"], str) else dict(row["headers"])
        key = self.upstream.creds.service_key
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw += [(b"apikey", key.encode()), (b"authorization", f"Bearer {key}".encode())]
        path, _, query = row["path"].partition("?")
        try:
            if row["body"] is None and row["method"] in ("POST", "PUT"):
                status, text = await self._copy_object(row["method"], path, query, raw)
            else:
                response = await self.upstream.open(row["method"], path, query, raw, row["body"])
                try:
                    text = (await response.aread())[:500].decode(errors="replace")
                finally:
                    await response.aclose()
                status = response.status_code
        except UpstreamError as exc:
            return exc.message, False
        if status < 300:
            return None, False
        return f"{status}: {text}", 400 <= status < 500 and status not in (408, 429)

    async def _copy_object(self, method: str, path: str, query: str, raw: list[tuple[bytes, bytes]]) -> tuple[int, str]:
        """A storage upload: stream the object as it is now stored locally to the upstream."""
        name = path.split("/storage/v1/object/", 1)[-1]
        local = f"{self.local_url}/storage/v1/object/authenticated/{name}"
        auth = {"apikey": self.local_key, "authorization": f"Bearer {self.local_key}"}
        try:
            got = await self.upstream.request("GET", local, list(auth.items()), None)
        except UpstreamError as exc:
            raise UpstreamError(502, f"local read failed: {exc.message}") from None
        try:
            if got.status_code in (400, 404):
                return 200, "gone locally since; nothing to copy"  # a later delete is queued behind
            if got.status_code != 200:
                raise UpstreamError(502, f"local read {got.status_code}")
            headers = [(k, v) for k, v in raw if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", got.headers.get("content-type", "application/octet-stream").encode()),
                        (b"x-upsert", b"true")]
            if "content-length" in got.headers:
                headers.append((b"content-length", got.headers["content-length"].encode()))
            response = await self.upstream.open(method, path, query, headers, got.aiter_raw())
            try:
                text = (await response.aread())[:500].decode(errors="replace")
            finally:
                await response.aclose()
            return response.status_code, text
        finally:
            await got.aclose()
