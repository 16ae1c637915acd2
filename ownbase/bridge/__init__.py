"""Bridge mode: ownbase in front of a live Supabase project (issue 14, docs/migration/bridge.md).

Installed by app.py only when OWNBASE_BRIDGE_URL is set: an ASGI middleware decides per request
whether ownbase serves it, forwards it to the upstream, or tries locally first (fallback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ownbase.service import Service


def install(app: "Starlette", services: "list[Service]", get_ctx: Callable[[], Any]) -> None:
    """Add the bridge's lifecycle hooks and its middleware (inside the request-id/CORS layer)."""
    from ownbase.bridge.middleware import BridgeMiddleware
    from ownbase.bridge.runtime import SERVICE

    services.append(SERVICE)
    app.add_middleware(BridgeMiddleware, get_ctx=get_ctx)  # type: ignore[arg-type]
