"""Checking JSON values against a dynamic column's type (pure: no I/O).

``coerce`` raises ``ValueError`` with a short reason ("expected an integer", ...) that the API puts
in a 400 naming the field. Values are checked here so a bad value gets a clear message before
any SQL runs; PostgreSQL still casts (and would reject) them as the final authority.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_INT_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
MAX_TEXT_BYTES = 1_000_000  # a single text value; bodies are capped by OWNBASE_MAX_BODY_BYTES anyway


def _integer(kind: str) -> Callable[[Any], Any]:
    low, high = INT_RANGES[kind]

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer ({kind}), got a boolean")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected an integer ({kind}), got {value!r}")
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, str) and _INT_TEXT.match(value):
            number = int(value)
        else:
            raise ValueError(f"expected an integer ({kind}), got {_kind(value)}")
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range for {kind} ({low} to {high})")
        return value

    return check


def _numeric(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    if isinstance(value, str):
        try:
            Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got the string {value[:40]!r}") from None
        return value
    raise ValueError(f"expected a number, got {_kind(value)}")


def _float(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got the string {value[:40]!r}") from None
        return value
    raise ValueError(f"expected a number, got {_kind(value)}")


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value
    raise ValueError(f"expected true or false, got {_kind(value)}")


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    if "\x00" in value:
        raise ValueError("text cannot contain the NUL character")
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise ValueError(f"text is longer than {MAX_TEXT_BYTES} bytes")
    return value


def _uuid(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a uuid string, got {_kind(value)}")
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"expected a uuid, got {value[:60]!r}") from None
    return value


def _iso(parser: Callable[[str], Any], what: str, example: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"expected {what} string like {example!r}, got {_kind(value)}")
        try:
            parser(value.strip())
        except ValueError:
            raise ValueError(f"expected {what} like {example!r}, got {value[:60]!r}") from None
        return value

    return check


def _json(value: Any) -> Any:
    return value  # any JSON value is a valid json/jsonb value


CHECKS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "smallint": _integer("smallint"),
    "integer": _integer("integer"),
    "bigint": _integer("bigint"),
    "numeric": _numeric,
    "real": _float,
    "double precision": _float,
    "boolean": _boolean,
    "uuid": _uuid,
    "date": _iso(date.fromisoformat, "an ISO date", "2024-05-01"),
    "time": _iso(time.fromisoformat, "an ISO time", "13:45:00"),
    "timestamp": _iso(datetime.fromisoformat, "an ISO timestamp", "2024-05-01T13:45:00"),
    "timestamptz": _iso(datetime.fromisoformat, "an ISO timestamp", "2024-05-01T13:45:00Z"),
    "json": _json,
    "jsonb": _json,
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def coerce(type_name: str, value: Any) -> Any:
    """Validate one non-null value against an API type ("integer", "text[]", ...); return it."""
    if type_name.endswith("[]"):
        base = type_name[:-2]
        if not isinstance(value, list):
            raise ValueError(f"expected an array of {base}, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, list):
                raise ValueError(f"element {i}: nested arrays are not supported")
            if item is None:
                out.append(None)
                continue
            try:
                out.append(CHECKS[base](item))
            except ValueError as exc:
                raise ValueError(f"element {i}: {exc}") from None
        return out
    return CHECKS[type_name](value)
