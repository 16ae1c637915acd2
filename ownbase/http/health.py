"""/health (the process is alive) and /ready (it can serve: database reachable; degraded parts listed)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("ownbase")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def component_states(ctx: Any) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for name, probe in ctx.components.items():
        try:
            states[name] = dict(probe())
        except Exception:  # noqa: BLE001 - a broken probe is a degraded component, not a failed check
            log.exception("status probe %s failed", name)
            states[name] = {"degraded": True, "cause": "probe"}
    return states


async def ready(request: Request) -> Response:
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None or ctx.shutting_down:
        return JSONResponse({"status": "starting" if ctx is None else "stopping"}, status_code=503)
    try:
        async with asyncio.timeout(2):
            await ctx.db.owner.fetchval("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
    states = component_states(ctx)
    degraded = sorted(name for name, state in states.items() if state.get("degraded"))
    body: dict[str, Any] = {"status": "ok", "degraded": degraded, "components": states}
    # A down read replica is reported, not failed: reads fall back to the primary.
    body.update(await ctx.db.replica_status())
    # Serving without Redis is a supported mode (per-process limits, local fan-out); only a
    # deployment that says so takes the process out of rotation for it.
    failing = ctx.settings.ready_require_redis and any(
        states[name].get("cause") == "redis" for name in degraded)
    return JSONResponse(body, status_code=503 if failing else 200)
