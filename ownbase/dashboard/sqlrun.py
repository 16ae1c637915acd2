"""The SQL editor: run the owner's SQL on a connection of its own, report errors with positions.

A fresh connection per run means a `set role` or `set search_path` in one run cannot leak into the
server's pools. Results are cut at MAX_ROWS rows, and each run has a statement timeout.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

MAX_ROWS = 1000
MAX_SQL_BYTES = 1_000_000
TIMEOUT_MS = 60_000

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^']|'')*'|\$(\w*)\$.*?\$\1\$", re.S)


def _statements(sql: str) -> list[str]:
    bare = _STRINGS.sub("''", _COMMENTS.sub(" ", sql))
    return [s.strip().lower() for s in bare.split(";") if s.strip()]


def destructive(sql: str) -> str | None:
    """Why a statement needs a confirm step (None when it does not)."""
    for stmt in _statements(sql):
        words = stmt.split()
        if not words:
            continue
        head = words[0]
        if head in ("drop", "truncate"):
            return f"{head.upper()} removes data or objects for good"
        if head == "alter" and " drop " in f" {stmt} ":
            return "ALTER ... DROP removes objects or columns"
        if head in ("delete", "update") and not re.search(r"\bwhere\b", stmt):
            return f"{head.upper()} without WHERE changes every row"
    return None


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    return str(value)


def error_json(sql: str, exc: asyncpg.PostgresError, shift: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"message": getattr(exc, "message", str(exc)), "code": getattr(exc, "sqlstate", None),
                           "detail": getattr(exc, "detail", None), "hint": getattr(exc, "hint", None)}
    pos = getattr(exc, "position", None)
    if pos and str(pos).isdigit():
        offset = max(0, int(pos) - 1 - shift)  # PostgreSQL counts from 1; `shift` skips an added "explain "
        before = sql[:offset]
        out.update(position=offset + 1, line=before.count("\n") + 1, column=offset - (before.rfind("\n") + 1) + 1)
    return out


async def run(conn: asyncpg.Connection, sql: str, *, explain: bool = False) -> dict[str, Any]:
    await conn.execute(f"set statement_timeout = {TIMEOUT_MS}")
    text = f"explain {sql}" if explain else sql
    try:
        try:
            stmt = await conn.prepare(text)
        except asyncpg.PostgresSyntaxError as exc:
            if "multiple commands" not in str(exc):
                raise
            # A script: run it whole; only the status of the run is reported.
            status = await conn.execute(text)
            return {"columns": [], "rows": [], "status": status, "truncated": False}
        attrs = stmt.get_attributes()
        if not attrs:
            await stmt.fetch()
            return {"columns": [], "rows": [], "status": stmt.get_statusmsg(), "truncated": False}
        async with conn.transaction():
            cursor = await stmt.cursor()
            rows = await cursor.fetch(MAX_ROWS + 1)
        cols = [a.name for a in attrs]
        out_rows = [[jsonable(v) for v in r.values()] for r in rows[:MAX_ROWS]]
        result = {"columns": cols, "rows": out_rows, "status": f"{len(out_rows)} rows",
                  "truncated": len(rows) > MAX_ROWS}
        if explain:
            result["plan"] = "\n".join(str(r[0]) for r in out_rows)
        return result
    except asyncpg.PostgresError as exc:
        return {"error": error_json(sql, exc, shift=len(text) - len(sql))}
