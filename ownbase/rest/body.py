"""Request bodies of /rest/v1: JSON (nesting bounded) and ``text/csv``, as parsed values plus the
JSON text the statement receives. Every malformation is a 400 ``PGRST102``, never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ownbase.rest import errors
from ownbase.rest.request import parse_csv_body

JSON_TYPES = ("application/json", "application/vnd.pgrst.object+json", "application/vnd.pgrst.object", "*/*", "")
_CSV_INLINE_BYTES = 64 * 1024  # bigger CSV bodies are parsed in a worker thread, off the event loop
TOO_DEEP = "Empty or invalid json"
TOO_DEEP_DETAILS = "The JSON body is nested too deeply"


def content_type(header: str | None) -> str:
    return (header or "application/json").split(";")[0].strip().lower()


def check_json_type(header: str | None) -> None:
    ctype = content_type(header)
    if ctype not in JSON_TYPES:
        raise errors.bad_body(f"Content-Type not acceptable: {ctype}")


def _too_deep() -> errors.ApiError:
    return errors.ApiError(400, "PGRST102", TOO_DEEP, TOO_DEEP_DETAILS)


def parse_json(body: bytes) -> Any:
    """The parsed body. Nesting is bounded by the parser's recursion limit (about 1,000 levels
    at most): deeper documents answer 400 instead of exhausting the stack."""
    if not body.strip():
        raise errors.bad_body()
    try:
        return json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise errors.bad_body() from None


def dumps(value: Any) -> str:
    """JSON text of a parsed body (nesting as deep as the parser allowed may still be too deep to
    serialise from a deeper stack: that is the same 400)."""
    try:
        return json.dumps(value)
    except RecursionError:
        raise _too_deep() from None


def _csv(body: bytes) -> tuple[list[dict[str, str | None]], str]:
    rows = parse_csv_body(body)
    return rows, json.dumps(rows)


async def payload(body: bytes, content_type_header: str | None) -> tuple[Any, str]:
    """The body of a write as (parsed value, JSON text for the statement): JSON, or ``text/csv``
    (header line + rows) turned into an array of objects whose values are strings or null, so
    PostgreSQL converts them to the column types exactly as for a JSON body."""
    if content_type(content_type_header) == "text/csv":
        if len(body) > _CSV_INLINE_BYTES:
            return await asyncio.to_thread(_csv, body)
        return _csv(body)
    check_json_type(content_type_header)
    value = parse_json(body)
    try:
        raw = body.decode()
    except UnicodeDecodeError:  # valid JSON in another Unicode encoding
        raw = dumps(value)
    return value, raw


def one_object(value: Any, content_type_header: str | None, method: str) -> Any:
    """PATCH/PUT take one object; a CSV body must hold exactly one row for them."""
    if content_type(content_type_header) == "text/csv":
        if len(value) != 1:
            raise errors.bad_body(f"Invalid CSV: a {method} body must have exactly one row after the "
                                  f"header, got {len(value)}")
        return value[0]
    return value
