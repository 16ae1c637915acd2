"""build_app(settings): mounts each service's routes and owns the process lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable

from starlette.applications import Starlette
from starlette.routing import Route

from ownbase import logs
from ownbase.context import Context
from ownbase.db.exposure import exposure_warnings
from ownbase.db.migrate import apply_migrations, ensure_authenticator
from ownbase.db.pool import connect, open_database
from ownbase.db.startup import startup_lock
from ownbase.http.client_ip import parse_networks
from ownbase.http.health import health, ready
from ownbase.http.middleware import OwnbaseMiddleware
from ownbase.keys import build_keyring
from ownbase.limits import MemoryRateLimiter, SharedRateLimiter
from ownbase.service import Service
from ownbase.settings import Settings, load_settings

log = logging.getLogger("ownbase")


def services() -> list[Service]:
    # Imported here so that each service stays an independent package (dependency rule:
    # settings/db/keys <- services <- app).
    from ownbase.auth.routes import SERVICE as auth
    from ownbase.dashboard.routes import SERVICE as dashboard
    from ownbase.realtime.routes import SERVICE as realtime
    from ownbase.rest.routes import SERVICE as rest
    from ownbase.storage.routes import SERVICE as storage
    from ownbase.tables.routes import SERVICE as tables

    return [auth, rest, tables, storage, realtime, dashboard]


def authenticator_password(settings: Settings, keys_secret: str) -> str:
    return settings.db_authenticator_password or keys_secret


# Set by `ownbase start` once its parent process has prepared the database: uvicorn's workers
# (and the single in-process server) then skip the work instead of repeating it N times.
PREPARED_ENV = "_OWNBASE_DATABASE_PREPARED"


def _waiting() -> None:
    log.warning("waiting for another ownbase to finish start-up (migrations, roles) ...")


async def prepare_database(settings: Settings, owner_url: str, password: str) -> list[str]:
    """All start-up database work, once, under the start-up advisory lock; then the exposure
    advice (read-only, outside the lock). Returns the bundled migrations applied now."""
    conn = await connect(owner_url, settings)
    try:
        async with startup_lock(conn, settings.db_startup_lock_timeout, _waiting):
            applied = await apply_migrations(conn)
            await ensure_authenticator(conn, settings.db_authenticator_role, password)
            for svc in services():
                if svc.prepare is not None:
                    await svc.prepare(conn, settings)
        if applied:
            log.info("applied ownbase migrations %s", ", ".join(applied))
        for line in await exposure_warnings(conn, list(settings.db_schemas)):
            log.warning(line)
        return applied
    finally:
        await conn.close()


FULL_GC_EVERY = 1000  # young-generation passes between full collections (CPython's default: 10)


def tune_gc() -> None:
    """Keep the cyclic garbage collector's full passes out of request and message latencies.

    Everything loaded at start-up (modules, schema cache, settings) lives as long as the process,
    so it moves out of the collector's reach (gc.freeze). Full passes over what is left (e.g. the
    objects of 1,000 realtime sockets) still took ~110 ms every 10-20 s under load and freed
    nothing, which was the whole p99 of realtime broadcasts; most garbage here dies young or by
    reference counting, so full passes now run 100x less often. Young passes are unchanged.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


# One stuck step (a connection that never answers, a task that ignores cancellation) must not keep
# the process, and with --workers uvicorn's parent waiting for it, from exiting.
SHUTDOWN_STEP_SECONDS = 10


async def _bounded(step: Awaitable[None], what: str) -> bool:
    """Run one shutdown step for at most SHUTDOWN_STEP_SECONDS; False if it failed or timed out."""
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
            await step
        return True
    except TimeoutError:
        log.warning("shutdown of %s did not finish in %d s; going on", what, SHUTDOWN_STEP_SECONDS)
    except Exception:  # noqa: BLE001 - the other steps still run
        log.exception("shutdown of %s failed", what)
    return False


def build_app(settings: Settings | None = None, *, prepare: bool = True) -> Starlette:
    """``prepare=False``: the database was prepared by the starting parent (ownbase start)."""
    settings = settings or load_settings()
    svcs = services()
    holder: dict[str, Context] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError("OWNBASE_DATABASE_URL is not set (use `ownbase start`)")
        keys = build_keyring(settings)
        password = authenticator_password(settings, keys.derive_secret("db-authenticator"))
        if prepare:
            await prepare_database(settings, settings.database_url, password)
        db = await open_database(settings, settings.database_url, password)
        redis_client = None
        if settings.redis_url:
            import redis.asyncio as aioredis

            redis_client = aioredis.from_url(settings.redis_url)
            limiter = SharedRateLimiter(redis_client, settings.redis_timeout_ms / 1000)
        else:
            limiter = MemoryRateLimiter()
        ctx = Context(settings=settings, keys=keys, db=db, limiter=limiter,
                      trusted_networks=parse_networks(settings.trusted_proxies), redis=redis_client)
        started: list[Service] = []
        try:
            for svc in svcs:
                if svc.startup is not None:
                    await svc.startup(ctx)
                started.append(svc)
            app.state.ctx = ctx
            holder["ctx"] = ctx
            tune_gc()
            yield
        finally:
            ctx.shutting_down = True
            for svc in reversed(started):
                if svc.shutdown is not None:
                    await _bounded(svc.shutdown(ctx), svc.name)
            if not await _bounded(db.close(), "the database pools"):
                for pool in (db.read, db.api, db.owner):
                    if pool is not None:
                        pool.terminate()
            if redis_client is not None:
                await _bounded(redis_client.aclose(), "the Redis client")

    routes: list = [Route("/health", health), Route("/ready", ready)]
    for svc in svcs:
        if svc.name == "dashboard" and not settings.dashboard:
            continue  # OWNBASE_DASHBOARD=off: /dashboard is not mounted at all
        routes.extend(svc.routes)
    app = Starlette(routes=routes, lifespan=lifespan)
    if settings.bridge_url:  # bridge mode: in front of a live Supabase project (docs/migration/bridge.md)
        from ownbase.bridge import install as install_bridge

        install_bridge(app, svcs, lambda: holder.get("ctx"))
    app.add_middleware(OwnbaseMiddleware, get_ctx=lambda: holder.get("ctx"))  # type: ignore[arg-type]
    app.state.settings = settings
    return app


def create_app() -> Starlette:
    """uvicorn factory (``ownbase.app:create_app``) used by ``ownbase start``."""
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    return build_app(settings, prepare=os.environ.get(PREPARED_ENV) != "1")
