"""build_app(settings): mounts each service's routes and owns the process lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ownbase import logs
from ownbase.context import Context
from ownbase.db.migrate import apply_migrations, ensure_authenticator
from ownbase.db.pool import connect, open_database
from ownbase.http.client_ip import parse_networks
from ownbase.http.middleware import OwnbaseMiddleware
from ownbase.keys import build_keyring
from ownbase.limits import MemoryRateLimiter, RedisRateLimiter
from ownbase.service import Service
from ownbase.settings import Settings, load_settings

log = logging.getLogger("ownbase")


def services() -> list[Service]:
    # Imported here so that each service stays an independent package (dependency rule:
    # settings/db/keys <- services <- app).
    from ownbase.auth.routes import SERVICE as auth
    from ownbase.realtime.routes import SERVICE as realtime
    from ownbase.rest.routes import SERVICE as rest
    from ownbase.storage.routes import SERVICE as storage
    from ownbase.tables.routes import SERVICE as tables

    return [auth, rest, tables, storage, realtime]


def authenticator_password(settings: Settings, keys_secret: str) -> str:
    return settings.db_authenticator_password or keys_secret


async def prepare_database(settings: Settings, owner_url: str, password: str) -> list[str]:
    conn = await connect(owner_url, settings)
    try:
        applied = await apply_migrations(conn)
        await ensure_authenticator(conn, settings.db_authenticator_role, password)
        return applied
    finally:
        await conn.close()


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    ctx: Context | None = getattr(request.app.state, "ctx", None)
    if ctx is None or ctx.shutting_down:
        return JSONResponse({"status": "starting" if ctx is None else "stopping"}, status_code=503)
    try:
        async with asyncio.timeout(2):
            await ctx.db.owner.fetchval("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
    # A down read replica is reported, not failed: reads fall back to the primary.
    return JSONResponse({"status": "ok", **await ctx.db.replica_status()})


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


def build_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    svcs = services()
    holder: dict[str, Context] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError("OWNBASE_DATABASE_URL is not set (use `ownbase start`)")
        keys = build_keyring(settings)
        password = authenticator_password(settings, keys.derive_secret("db-authenticator"))
        await prepare_database(settings, settings.database_url, password)
        db = await open_database(settings, settings.database_url, password)
        redis_client = None
        if settings.redis_url:
            import redis.asyncio as aioredis

            redis_client = aioredis.from_url(settings.redis_url)
            limiter = RedisRateLimiter(redis_client)
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
                    try:
                        await svc.shutdown(ctx)
                    except Exception:  # noqa: BLE001
                        log.exception("shutdown of %s failed", svc.name)
            await db.close()
            if redis_client is not None:
                await redis_client.aclose()

    routes: list = [Route("/health", health), Route("/ready", ready)]
    for svc in svcs:
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
    return build_app(settings)
