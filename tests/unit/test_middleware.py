"""The outermost middleware: JSON 500 with request id (no stack trace), service-shaped errors."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ownbase.http.middleware import OwnbaseMiddleware


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("secret internal detail")


def make_app() -> Starlette:
    app = Starlette(routes=[Route("/rest/v1/boom", boom), Route("/auth/v1/boom", boom)])
    app.add_middleware(OwnbaseMiddleware, get_ctx=lambda: None)  # type: ignore[arg-type]
    return app


@pytest.mark.parametrize("path,code_key", [("/rest/v1/boom", "code"), ("/auth/v1/boom", "error_code")])
async def test_unexpected_error_is_json_500_with_request_id(path: str, code_key: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with caplog.at_level(logging.ERROR, logger="ownbase.error"):
            r = await client.get(path, headers={"x-request-id": "req-42"})
    assert r.status_code == 500
    body = r.json()
    assert body[code_key] == "unexpected_failure"
    assert body["request_id"] == "req-42"
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert r.headers["x-request-id"] == "req-42"
    logged = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "req-42"]
    assert logged and logged[0].exc_info is not None
