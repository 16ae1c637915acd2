"""Connection pools.

* ``owner``: the URL's own user (the embedded superuser, or the RDS master user). Used for
  migrations and for the services' internal bookkeeping (auth tables, object metadata cleanup,
  change capture, schema introspection).
* ``api``: the ``ownbase_authenticator`` login role, which can only switch into ``anon``,
  ``authenticated`` and ``service_role``; every data-plane request runs on it (see scope.py).
* ``read``: the same login on the read replica, when ``OWNBASE_DATABASE_READ_URL`` is set.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from ownbase.settings import Settings


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

    def get_reset_query(self) -> str:
        return ""

    async def ensure_statement_timeout(self, ms: str) -> None:
        """A session-level statement_timeout, for single-statement requests (one round trip);
        transactions of the other paths override it with their own local setting."""
        if self._statement_timeout != ms:
            await self.execute("select set_config('statement_timeout', $1, false)", ms)
            self._statement_timeout = ms


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb arrive as Python objects and may be sent as such.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, settings: Settings, *, min_size: int | None = None,
                      max_size: int | None = None, init_types: bool = True,
                      scoped: bool = False) -> asyncpg.Pool:
    dsn, ctx = ssl_context(url, settings)
    kwargs: dict[str, Any] = {}
    if ctx is not None:
        kwargs["ssl"] = ctx
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
class Database:
    owner_url: str
    api_url: str
    read_api_url: str | None
    owner: asyncpg.Pool
    api: asyncpg.Pool
    read: asyncpg.Pool | None

    def pool_for(self, read_only: bool) -> asyncpg.Pool:
        return self.read if (read_only and self.read is not None) else self.api

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
    read = await create_pool(read_url, settings, scoped=True) if read_url else None
    return Database(owner_url, api_url, read_url, owner, api, read)
