"""Errors raised outside any one service (rate limits, crashes) in the shape the path's client parses."""

from __future__ import annotations

import json
from typing import Any


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
