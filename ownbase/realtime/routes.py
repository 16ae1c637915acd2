"""realtime routes: the Phoenix websocket and HTTP broadcast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route, WebSocketRoute

from ownbase.realtime.capture import sync_triggers
from ownbase.realtime.http import broadcast_batch, broadcast_single
from ownbase.realtime.hub import Hub
from ownbase.realtime.socket import websocket_endpoint
from ownbase.service import Service

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.settings import Settings


async def startup(ctx: "Context") -> None:
    hub = Hub(ctx)
    await hub.start()
    ctx.state["realtime"] = hub
    # /ready lists realtime as degraded while Redis is unreachable (in-process fan-out).
    ctx.components["realtime"] = lambda: {**hub.status(), "cause": "redis"}


async def prepare(conn: Any, settings: "Settings") -> None:
    """Capture triggers for tables added to the publication while no server ran: installed once,
    under the start-up lock, before any process serves (the leader keeps them in sync after)."""
    await sync_triggers(conn)


async def shutdown(ctx: "Context") -> None:
    hub = ctx.state.pop("realtime", None)
    if hub is not None:
        await hub.stop()


SERVICE = Service(
    name="realtime",
    routes=[
        WebSocketRoute("/realtime/v1/websocket", websocket_endpoint),
        WebSocketRoute("/realtime/v1/websocket/", websocket_endpoint),
        Route("/realtime/v1/api/broadcast", broadcast_batch, methods=["POST"]),
        Route("/realtime/v1/api/broadcast/{topic}/events/{event}", broadcast_single, methods=["POST"]),
    ],
    startup=startup,
    shutdown=shutdown,
    prepare=prepare,
)
