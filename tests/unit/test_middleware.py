"""The outermost middleware: JSON 500 with request id (no stack trace), service-shaped errors."""

from __future__ import annotations

import logging

import asyncpg
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


def _raising(exc: BaseException) -> Starlette:
    async def fail(request: Request) -> JSONResponse:
        raise exc

    paths = ["/rest/v1/x", "/auth/v1/x", "/storage/v1/x", "/db/v1/x"]
    app = Starlette(routes=[Route(p, fail, methods=["POST"]) for p in paths])
    app.add_middleware(OwnbaseMiddleware, get_ctx=lambda: None)  # type: ignore[arg-type]
    return app


@pytest.mark.parametrize("exc,status", [
    (ConnectionRefusedError(111, "refused"), 503),
    (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), 503),
    (asyncpg.exceptions.InterfaceError("pool is closing"), 503),
    (RecursionError("maximum recursion depth exceeded while decoding a JSON object"), 400),
    (asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'), 400),
    (asyncpg.exceptions.NumericValueOutOfRangeError("bigint out of range"), 400),
    (ValueError("a bug"), 500),
])
@pytest.mark.parametrize("path,shape", [("/rest/v1/x", "code"), ("/db/v1/x", "code"), ("/auth/v1/x", "error_code"),
                                        ("/storage/v1/x", "statusCode")])
async def test_generic_errors_map_to_4xx_and_503_in_each_shape(exc: BaseException, status: int, path: str,
                                                             shape: str) -> None:
    transport = httpx.ASGITransport(app=_raising(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post(path)
    assert r.status_code == status
    assert shape in r.json() and ("message" in r.json() or "msg" in r.json())
    if status == 503:
        assert r.headers["retry-after"] == "1"
