"""Connection pools.

* ``owner``: the URL's own user (the embedded superuser, or the RDS master user). Used for
  migrations and for the services' internal bookkeeping (auth tables, object metadata cleanup,
  change capture, schema introspection).
* ``api``: the ``ownbase_authenticator`` login role, which can only switch into ``anon``,
  ``authenticated`` and ``service_role``; every data-plane request runs on it (see scope.py).
* ``read``: the same login on the read replica, when ``OWNBASE_DATABASE_READ_URL`` is set.

The replica is an optimisation, never a dependency: when it cannot be reached (at start-up or
later) reads go to the primary, the replica is tried again after ``REPLICA_RETRY_SECONDS``, and
``/ready`` reports the state without failing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from ownbase.settings import Settings

log = logging.getLogger("ownbase.db")

# Failures that mean "this server cannot be reached / cannot serve now", not "this statement failed".
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable host, DNS
    TimeoutError,  # connect timeout
    asyncpg.PostgresConnectionError,  # 08xxx and lost connections
    asyncpg.CannotConnectNowError,  # starting up / shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InvalidCatalogNameError,  # the database is gone
    asyncpg.InvalidAuthorizationSpecificationError,  # login refused (also a bad password)
)
REPLICA_RETRY_SECONDS = 5.0
REPLICA_CONNECT_TIMEOUT = 5.0  # a black-holed replica must not hold a request for asyncpg's default 60 s


def is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, UNREACHABLE)


def database_unreachable(exc: BaseException) -> bool:
    """An unreachable-database failure, as opposed to e.g. a disk or S3 OSError: the error is
    asyncpg's own, or an OS-level one raised while asyncpg was connecting or talking."""
    if not is_unreachable(exc):
        return False
    if isinstance(exc, asyncpg.PostgresError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


def with_user(url: str, user: str, password: str) -> str:
    """The same server/database URL with other credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, parts.fragment))


def ssl_context(url: str, settings: Settings) -> tuple[str, Any]:
    """asyncpg understands sslmode itself; we only add a CA bundle for verify-ca/verify-full."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    mode = (query.get("sslmode") or [""])[0]
    root = (query.get("sslrootcert") or [settings.db_ssl_root_cert])[0]
    if mode in ("verify-ca", "verify-full") and root:
        ctx = ssl.create_default_context(cafile=root)
        ctx.check_hostname = mode == "verify-full"
        query.pop("sslmode", None)
        query.pop("sslrootcert", None)
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, doseq=True), ""))
        return clean, ctx
    return url, None


class ScopedConnection(asyncpg.Connection):  # type: ignore[misc]
    """A request-scope connection: all request state is transaction-local (``set_config(...,
    true)``), and asyncpg always ends an open transaction on release, so the session-reset query
    (one more round trip per request) has nothing left to reset."""

    _statement_timeout: str | None = None
    _prepared_reads: Any = None

    def get_reset_query(self) -> str:
        return ""

    async def ensure_statement_timeout(self, ms: str) -> None:
        """A session-level statement_timeout, for single-statement requests (one round trip);
        transactions of the other paths override it with their own local setting."""
        if self._statement_timeout != ms:
            await self.execute("select set_config('statement_timeout', $1, false)", ms)
            self._statement_timeout = ms

    def prepared_reads(self) -> Any:
        """The read statements this session has prepared (``ownbase.db.scope.PreparedReads``):
        they live as long as the session, which the empty reset query keeps across releases."""
        if self._prepared_reads is None:
            from ownbase.db.scope import PreparedReads  # noqa: PLC0415 - db.scope imports db.pool

            self._prepared_reads = PreparedReads()
        return self._prepared_reads


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb arrive as Python objects and may be sent as such.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, settings: Settings, *, min_size: int | None = None,
                      max_size: int | None = None, init_types: bool = True,
                      scoped: bool = False, connect_timeout: float | None = None) -> asyncpg.Pool:
    dsn, ctx = ssl_context(url, settings)
    kwargs: dict[str, Any] = {}
    if ctx is not None:
        kwargs["ssl"] = ctx
    if connect_timeout is not None:
        kwargs["timeout"] = connect_timeout
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.db_pool_min if min_size is None else min_size,
        max_size=settings.db_pool_max if max_size is None else max_size,
        init=_init_connection if init_types else None,
        server_settings={"application_name": "ownbase"},
        connection_class=ScopedConnection if scoped else asyncpg.Connection,
        **kwargs,
    )
    assert pool is not None
    return pool


async def connect(url: str, settings: Settings) -> asyncpg.Connection:
    dsn, ctx = ssl_context(url, settings)
    conn = await asyncpg.connect(dsn, ssl=ctx) if ctx is not None else await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


@dataclass
class ReplicaState:
    """Whether the replica answered last time; while it does not, reads stay on the primary."""

    down_since: float | None = None
    retry_at: float = 0.0
    error: str = ""

    def usable(self) -> bool:
        """Up, or down long enough that this caller may try it once (the others keep using the
        primary until that try answers, so a black-holed replica delays one request at most)."""
        if self.down_since is None:
            return True
        now = time.monotonic()
        if now < self.retry_at:
            return False
        self.retry_at = now + REPLICA_RETRY_SECONDS
        return True

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.down_since is None:
            log.warning("read replica unreachable (%s: %s); serving reads from the primary",
                        type(exc).__name__, exc)
            self.down_since = now
        self.retry_at = now + REPLICA_RETRY_SECONDS
        self.error = f"{type(exc).__name__}: {exc}"

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("read replica reachable again; reads go to it")
        self.down_since = None
        self.error = ""


@dataclass
class Database:
    owner_url: str
    api_url: str
    read_api_url: str | None
    owner: asyncpg.Pool
    api: asyncpg.Pool
    read: asyncpg.Pool | None
    replica: ReplicaState = field(default_factory=ReplicaState)

    def replica_usable(self) -> bool:
        return self.read is not None and self.replica.usable()

    def pool_for(self, read_only: bool) -> asyncpg.Pool:
        return self.read if (read_only and self.read is not None and self.replica.usable()) else self.api

    async def replica_status(self, timeout: float = 1.0) -> dict[str, Any]:
        """For /ready: the replica's state (a failure is reported, never raised). A replica
        marked down is probed here, so it comes back even while no reads try it; one that is up
        is not (a busy pool must not look like an outage; failing reads mark it down)."""
        if self.read is None:
            return {}
        if self.replica.down_since is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self.read.fetchval("select 1")
                self.replica.answered()
            except Exception as exc:  # noqa: BLE001 - any failure means "reads stay on the primary"
                self.replica.failed(exc)
        if self.replica.down_since is None:
            return {"read_replica": "ok"}
        return {"read_replica": "unavailable", "read_replica_error": self.replica.error,
                "reads_served_by": "primary"}

    async def close(self) -> None:
        for pool in (self.read, self.api, self.owner):
            if pool is not None:
                await pool.close()


def authenticator_url(url: str, settings: Settings, password: str) -> str:
    return with_user(url, settings.db_authenticator_role, password)


async def open_database(settings: Settings, owner_url: str, authenticator_password: str) -> Database:
    api_url = authenticator_url(owner_url, settings, authenticator_password)
    read_url = (
        authenticator_url(settings.database_read_url, settings, authenticator_password)
        if settings.database_read_url
        else None
    )
    owner = await create_pool(owner_url, settings, min_size=1, max_size=max(4, settings.db_pool_max // 2))
    api = await create_pool(api_url, settings, scoped=True)
    db = Database(owner_url, api_url, read_url, owner, api, None)
    if read_url:
        db.read = await _open_replica(db, read_url, settings)
    return db


async def _open_replica(db: Database, read_url: str, settings: Settings) -> asyncpg.Pool:
    """The replica pool; a replica that is down now gets an empty pool (it connects when the
    replica answers again) and the process starts on the primary with one warning."""
    try:
        return await create_pool(read_url, settings, scoped=True, connect_timeout=REPLICA_CONNECT_TIMEOUT)
    except UNREACHABLE as exc:
        db.replica.failed(exc)
        return await create_pool(read_url, settings, scoped=True, min_size=0,
                                 connect_timeout=REPLICA_CONNECT_TIMEOUT)
