"""Realtime in upstream mode: the websocket is relayed frame by frame to the upstream's."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

import websockets

from ownbase.bridge.forward import Upstream

log = logging.getLogger("ownbase.bridge")

Message = dict[str, Any]


def swap_token(text: str, upstream: Upstream) -> str:
    """Join and access_token frames carry the client's key/token: give the upstream its own."""
    if "access_token" not in text:
        return text
    try:
        frame = json.loads(text)
    except ValueError:
        return text
    payload = frame[4] if isinstance(frame, list) and len(frame) == 5 else (
        frame.get("payload") if isinstance(frame, dict) else None)
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str):
        return text
    payload["access_token"] = upstream.creds.token(token)
    return json.dumps(frame)


async def relay_websocket(scope: dict[str, Any], receive: Callable[[], Awaitable[Message]],
                          send: Callable[[Message], Awaitable[None]], upstream: Upstream,
                          connect_timeout: float, max_size: int) -> bool:
    """Relay until either side closes; False when the upstream could not be reached."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return True
    base = upstream.base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    raw = scope.get("raw_path")
    url = upstream.url(raw.decode("latin-1") if raw else scope["path"], scope.get("query_string", b"").decode("latin-1"))
    url = base + url[len(upstream.base):]
    try:
        remote = await websockets.connect(url, subprotocols=scope.get("subprotocols") or None,
                                          open_timeout=connect_timeout, max_size=max_size)
    except Exception as exc:  # noqa: BLE001 - refused handshake (403 to the client)
        log.warning("upstream websocket failed: %s", exc)
        await send({"type": "websocket.close", "code": 1011})
        return False
    await send({"type": "websocket.accept", "subprotocol": remote.subprotocol})

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await remote.send(swap_token(message["text"], upstream))
            elif message.get("bytes") is not None:
                await remote.send(message["bytes"])

    async def upstream_to_client() -> None:
        async for frame in remote:
            key = "text" if isinstance(frame, str) else "bytes"
            await send({"type": "websocket.send", key: frame})

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await remote.close()
        try:
            await send({"type": "websocket.close", "code": remote.close_code or 1000})
        except Exception:  # noqa: BLE001 - the client is already gone
            pass
    return True
