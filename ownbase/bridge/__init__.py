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
    from ownbase.bridge.middleware import BridgeMiddleware  # noqa: PLC0415 - `ownbase bridge` commands import this package; the proxy stack loads only when app.py installs it
    from ownbase.bridge.runtime import SERVICE  # noqa: PLC0415 - as above: bridge runtime only in bridge mode

    services.append(SERVICE)
    app.add_middleware(BridgeMiddleware, get_ctx=get_ctx)  # type: ignore[arg-type]
