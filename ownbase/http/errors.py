"""Errors raised outside any one service (rate limits, crashes) in the shape the path's client parses."""

from __future__ import annotations

import json
import socket
from typing import Any

import asyncpg


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
        if isinstance(current, asyncpg.InterfaceError) and ("closed" in str(current) or "closing" in str(current)):
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


def unavailable_bytes(path: str, **extra: Any) -> bytes:
    """The 503 body for ``database_unavailable`` errors in the path's service shape."""
    for prefix, (code, message) in UNAVAILABLE.items():
        if path.startswith(prefix):
            return error_bytes(path, 503, code, message, **extra)
    return error_bytes(path, 503, "service_unavailable", "Service temporarily unavailable", **extra)
