"""The ASGI layer app.py installs when OWNBASE_BRIDGE_URL is set."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ownbase.bridge.ws import relay_websocket

Scope = dict[str, Any]


class BridgeMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], get_ctx: Callable[[], Any]) -> None:
        self.app = app
        self.get_ctx = get_ctx

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        ctx = self.get_ctx() if scope["type"] in ("http", "websocket") else None
        bridge = ctx.state.get("bridge") if ctx is not None else None
        if bridge is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        target = bridge.routes.resolve(scope.get("path", ""), headers)
        if target is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            if target.mode == "upstream":
                bridge.stats.add(target.service, target.resource, "upstream")
                if not await relay_websocket(scope, receive, send, bridge.upstream,
                                             ctx.settings.bridge_connect_timeout,
                                             ctx.settings.realtime_max_message_bytes * 2):
                    bridge.stats.add(target.service, target.resource, "upstream_error")
            else:
                bridge.stats.add(target.service, target.resource, "local")
                await self.app(scope, receive, send)
        else:
            await bridge.handle(scope, receive, send, target, self.app)
