"""Errors raised outside any one service (rate limits, crashes) in the shape the path's client parses."""

from __future__ import annotations

import json
import socket
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentError  # asyncpg's own (not exported) type check


def error_body(path: str, status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    if path.startswith("/auth/"):
        return {"code": status, "error_code": code, "msg": message, **extra}
    if path.startswith("/storage/"):
        return {"statusCode": str(status), "code": code, "error": code, "message": message, **extra}
    if path.startswith("/rest/") or path.startswith("/db/"):
        return {"code": code, "message": message, "details": extra.get("details"),
                "hint": extra.get("hint"), **{k: v for k, v in extra.items() if k not in ("details", "hint")}}
    return {"code": code, "message": message, **extra}


def error_bytes(path: str, status: int, code: str, message: str, **extra: Any) -> bytes:
    return json.dumps(error_body(path, status, code, message, **extra)).encode()


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) means the database cannot be reached right now:
    connection refused, reset or closed, the pool closing, the server shutting down or full.
    Services answer those with 503 (clients retry) instead of a 500."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, (ConnectionError, TimeoutError, socket.gaierror,
                                asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                                asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError,
                                asyncpg.CrashShutdownError)):
            return True
        if (isinstance(current, asyncpg.InterfaceError) and not isinstance(current, ArgumentError)
                and ("closed" in str(current) or "closing" in str(current))):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


UNAVAILABLE = {
    "/auth/": ("unexpected_failure", "Service temporarily unavailable: the database cannot be reached"),
    "/storage/": ("DatabaseError", "Service temporarily unavailable: the database cannot be reached"),
    "/rest/": ("PGRST000", "Database connection error. Retrying the connection."),
    "/db/": ("PGRST000", "Database connection error. Retrying the connection."),
}


BAD_INPUT_CODES = {
    "/auth/": "validation_failed",
    "/storage/": "InvalidRequest",
    "/rest/": "PGRST102",
    "/db/": "PGRST102",
}


def _code(table: dict[str, Any], path: str, default: Any) -> Any:
    for prefix, value in table.items():
        if path.startswith(prefix):
            return value
    return default


BAD_INPUT = (
    RecursionError,  # e.g. JSON nested ~1,000 deep
    asyncpg.DataError,  # SQLSTATE class 22 from a client's value: NUL bytes, out of range, bad syntax
    ArgumentError,  # a client's value of the wrong type for a query parameter
)


def generic_status(exc: BaseException) -> int | None:
    """The status the http layer answers for ``exc`` whichever service raised it, if any: 503 when
    the database is unreachable, 400 for input that could not be processed (nested too deeply, or
    a value PostgreSQL refused as data). Services let these propagate instead of answering 500."""
    if database_unavailable(exc):
        return 503
    if isinstance(exc, BAD_INPUT):
        return 400
    return None


def generic_error(path: str, exc: BaseException, **extra: Any) -> tuple[int, bytes] | None:
    """(status, body in the path's service shape) for errors ``generic_status`` knows."""
    status = generic_status(exc)
    if status == 503:
        code, message = _code(UNAVAILABLE, path, ("service_unavailable", "Service temporarily unavailable"))
        return 503, error_bytes(path, 503, code, message, **extra)
    if status == 400:
        code = _code(BAD_INPUT_CODES, path, "invalid_request")
        if isinstance(exc, RecursionError):
            message = "Request input nested too deeply"
        elif isinstance(exc, asyncpg.PostgresError):
            message = f"Invalid input: {exc}"
        else:
            message = "Invalid input: a value has the wrong type"
        return 400, error_bytes(path, 400, code, message, **extra)
    return None
