"""AWS Lambda entry point for the HTTP APIs: ``ownbase.aws.lambda_entry.handler``.

API Gateway (HTTP API, payload 2.0) events go through Mangum to the same Starlette app that
``ownbase start`` serves. Mangum would run the app's lifespan (migrations, pools, service
start-up) around *every* invocation; here it runs once per execution environment, on one event
loop that every invocation reuses, so pools and caches survive between requests.

Limits (docs/aws/04-lambda.md): Lambda accepts and returns at most 6 MB per invocation and API
Gateway waits at most 29 s. The CDK app routes storage and realtime to Fargate; a response that
would not fit is answered with a clear 400 instead of API Gateway's bare 502.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from typing import Any

from starlette.types import ASGIApp

log = logging.getLogger("ownbase.lambda")

# Lambda's synchronous invocation limit is 6 MB for the whole JSON response, headers included.
RESPONSE_LIMIT = 6 * 1024 * 1024 - 64 * 1024


class Lifespan:
    """Drives an ASGI app's lifespan protocol by hand: started once, stopped at teardown."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._receive: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._send: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._task = asyncio.ensure_future(self.app(scope, self._receive.get, self._send.put))  # type: ignore[arg-type]
        await self._receive.put({"type": "lifespan.startup"})
        message = await self._send.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"ownbase failed to start: {message.get('message', message['type'])}")

    async def shutdown(self) -> None:
        if self._task is None:
            return
        await self._receive.put({"type": "lifespan.shutdown"})
        await self._send.get()
        await self._task


class Handler:
    """One per execution environment: settings from the environment (secrets fetched first)."""

    def __init__(self, app: ASGIApp | None = None) -> None:
        from mangum import Mangum

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        if app is None:
            app = self._build()
        self.app = app
        self.lifespan = Lifespan(app)
        self.loop.run_until_complete(self.lifespan.startup())
        self.adapter = Mangum(app, lifespan="off")

    @staticmethod
    def _build() -> ASGIApp:
        from ownbase import logs
        from ownbase.app import build_app
        from ownbase.aws.secrets import compose, fetch_secrets
        from ownbase.settings import load_settings

        fetch_secrets(os.environ)  # Lambda has no secret injection: read them at cold start
        compose(os.environ)
        settings = load_settings()
        logs.configure(settings.log_level, settings.log_format)
        return build_app(settings)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        asyncio.set_event_loop(self.loop)
        response = self.adapter(event, context)
        return fit_response(response)

    def close(self) -> None:
        """Shut the app down (Lambda never calls this; tests and tools do)."""
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.lifespan.shutdown())
        self.loop.close()
        asyncio.set_event_loop(None)


def fit_response(response: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(response)) <= RESPONSE_LIMIT:
        return response
    body = {"code": "OB413", "message": "response larger than the 6 MB an AWS Lambda function may return",
            "details": None,
            "hint": "page the result (limit/offset or Range), or call the Fargate URL for large downloads"}
    return {"statusCode": 400, "headers": {"content-type": "application/json"},
            "isBase64Encoded": False, "body": json.dumps(body)}


_handler: Handler | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = Handler()
    return _handler(event, context)


def decode_body(response: dict[str, Any]) -> bytes:
    """The response body as bytes (tests and tools)."""
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
