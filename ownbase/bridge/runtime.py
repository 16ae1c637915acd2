"""Start and stop the bridge with the process: upstream client, token keys, counters, mirror."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ownbase.bridge.forward import Upstream
from ownbase.bridge.mirror import Mirror
from ownbase.bridge.proxy import Bridge
from ownbase.bridge.routing import load_routes
from ownbase.bridge.stats import Stats
from ownbase.bridge.tokens import REFRESH_AFTER, UpstreamKeys, install
from ownbase.service import Service


async def startup(ctx: Any) -> None:
    settings = ctx.settings
    upstream = Upstream(settings, ctx.keys)
    stats = Stats()
    bridge = Bridge(ctx, load_routes(settings), upstream, stats)
    extra: list[asyncio.Task[None]] = []
    if settings.bridge_auth != "local" or settings.bridge_jwks_url:
        keys = UpstreamKeys(settings.bridge_jwks_url or f"{upstream.base}/auth/v1/.well-known/jwks.json",
                            settings.bridge_anon_key)
        await keys.refresh(upstream)
        install(ctx.keys, keys)
        extra.append(asyncio.create_task(_refresh_keys(keys, upstream)))
    bridge.mirror = Mirror(ctx.db.owner, upstream, stats, settings.api_url, ctx.keys.service_role_key,
                           settings.bridge_mirror_max_backoff)
    tasks = [asyncio.create_task(stats.run(ctx.db.owner, settings.bridge_stats_flush_seconds)),
             asyncio.create_task(bridge.mirror.run()), *extra]
    ctx.state["bridge"] = bridge
    ctx.state["bridge_tasks"] = tasks


async def _refresh_keys(keys: UpstreamKeys, upstream: Upstream) -> None:
    # Picks up the upstream's key rotations, and its keys at all if it was down at start.
    while True:
        await asyncio.sleep(60 if not keys.keys else REFRESH_AFTER)
        await keys.refresh(upstream)


async def shutdown(ctx: Any) -> None:
    bridge = ctx.state.pop("bridge", None)
    for task in ctx.state.pop("bridge_tasks", []):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if bridge is not None:
        await bridge.stats.flush(ctx.db.owner)
        await bridge.upstream.close()


SERVICE = Service(name="bridge", startup=startup, shutdown=shutdown)
