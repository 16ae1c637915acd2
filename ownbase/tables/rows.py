"""Row bodies of the dynamic-table API checked against the table's column spec (pure)."""

from __future__ import annotations

from typing import Any

from ownbase.tables import errors
from ownbase.tables.spec import SYSTEM_COLUMNS, TableSpec
from ownbase.tables.values import coerce

MAX_ROWS_PER_INSERT = 10_000
_SYSTEM = {c["name"]: c for c in SYSTEM_COLUMNS}


def _check_object(table: TableSpec, row: Any, *, insert: bool, is_service: bool, where: str) -> None:
    if not isinstance(row, dict):
        raise errors.invalid_body(f"{where} must be a JSON object of column values")
    for key, value in row.items():
        if key in _SYSTEM:
            if key in ("created_at", "updated_at"):
                raise errors.read_only(key)
            if key == "id" and not insert:
                raise errors.read_only(key)
            if key == "owner_id" and not is_service:
                raise errors.read_only(key)
            if value is None:
                if key == "id":
                    raise errors.null_value(key)
                continue
            try:
                coerce("uuid", value)
            except ValueError as exc:
                raise errors.invalid_value(key, str(exc)) from None
            continue
        col = table.column(key)
        if col is None:
            raise errors.unknown_column(key, table.name)
        if value is None:
            if not col.nullable:
                raise errors.null_value(key)
            continue
        try:
            coerce(col.type, value)
        except ValueError as exc:
            raise errors.invalid_value(key, str(exc)) from None
    if insert:
        for col in table.columns:
            if not col.nullable and not col.has_default and col.name not in row:
                raise errors.missing_value(col.name)


def check_insert(table: TableSpec, body: Any, *, is_service: bool) -> None:
    """POST …/rows takes one object or an array of objects."""
    rows = body if isinstance(body, list) else [body]
    if len(rows) > MAX_ROWS_PER_INSERT:
        raise errors.invalid_body(f"at most {MAX_ROWS_PER_INSERT} rows per request")
    for i, row in enumerate(rows):
        _check_object(table, row, insert=True, is_service=is_service,
                      where="the body" if not isinstance(body, list) else f"row {i}")


def check_update(table: TableSpec, body: Any, *, is_service: bool) -> None:
    if not isinstance(body, dict):
        raise errors.invalid_body("the body must be a JSON object of the column values to change")
    if not body:
        raise errors.invalid_body("the body names no column to change")
    _check_object(table, body, insert=False, is_service=is_service, where="the body")
