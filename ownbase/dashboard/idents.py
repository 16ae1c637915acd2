"""Identifier and type checks for the SQL the table editor builds (values always go as parameters)."""

from __future__ import annotations

import re
from typing import Any

from ownbase.db.sql import quote_ident

_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?( [A-Za-z_][A-Za-z0-9_]*){0,3}"
                   r"(\(\d{1,4}(, ?\d{1,4})?\))?(\[\])?$")
# Default expressions offered by the editor; any other default is a literal value (%L-quoted).
DEFAULT_EXPRESSIONS = ("now()", "gen_random_uuid()", "auth.uid()", "current_date", "true", "false",
                       "'{}'::jsonb", "'[]'::jsonb")


class BadInput(ValueError):
    """Input the dashboard refuses with a 400 and this message."""


def ident(name: Any) -> str:
    """A double-quoted SQL identifier; refuses what PostgreSQL could not store."""
    if not isinstance(name, str) or not 0 < len(name) <= 63 or "\x00" in name:
        raise BadInput(f"invalid name: {str(name)[:80]!r}")
    return quote_ident(name)


def qualified(schema: Any, table: Any) -> str:
    return f"{ident(schema)}.{ident(table)}"


def type_name(value: Any) -> str:
    """A column type as typed by the owner, shape-checked here and resolved by to_regtype later."""
    if not isinstance(value, str) or len(value) > 80 or not _TYPE.match(value.strip()):
        raise BadInput(f"invalid type: {str(value)[:80]!r}")
    return value.strip()


def literal(value: Any) -> str:
    """A SQL string literal for DDL, where PostgreSQL takes no parameters (defaults)."""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        raise BadInput("a NUL character is not allowed")
    return "'" + text.replace("'", "''") + "'" if "\\" not in text else "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
