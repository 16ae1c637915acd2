"""Running one rendered statement in the request's transaction, under the caller's role: the one
place that opens the transaction, applies ``Prefer: timezone``, runs the statement, lets the caller
check the result (an error rolls everything back), reads ``response.headers``/``response.status``
and commits, or rolls back for ``Prefer: tx=rollback`` / ``OWNBASE_DB_TX_END``.

(A plain read takes the one-round-trip path in ``ownbase.db.scope.scoped_read`` instead.)
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ownbase.db.scope import RequestScope, request_scope
from ownbase.rest import response


class Fetch(enum.Enum):
    ROW = "row"  # one result row (the shaped body)
    STATUS = "status"  # no rows: the status tag's row count
    ALL = "all"  # every row (EXPLAIN's text lines)


@dataclass
class Statement:
    text: str
    values: list[Any] = field(default_factory=list)


@dataclass
class Outcome:
    row: Any = None  # asyncpg.Record for Fetch.ROW
    rows: list[Any] = field(default_factory=list)  # Fetch.ALL
    affected: int = 0  # Fetch.STATUS
    gucs: response.Gucs = field(default_factory=response.Gucs)
    timezone: str | None = None  # the Prefer: timezone that applied (None: unknown zone, ignored)
    extra: Any = None  # what ``after`` returned


def tx_end(setting: str, preferred: str | None) -> tuple[bool, str | None]:
    """(roll back at the end, the ``tx`` preference that applied) for OWNBASE_DB_TX_END, which
    honours ``Prefer: tx=`` only in its ``-allow-override`` forms, as PostgREST's db-tx-end."""
    if setting.endswith("allow-override") and preferred in ("commit", "rollback"):
        return preferred == "rollback", preferred
    return setting.startswith("rollback"), None


class _Rollback(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__("rollback")
        self.outcome = outcome


async def _timezone(conn: Any, zone: str | None) -> str | None:
    if not zone:
        return None
    ok = await conn.fetchval("select exists(select 1 from pg_timezone_names where name = $1)", zone)
    if not ok:
        return None
    await conn.execute("select set_config('timezone', $1, true)", zone)
    return zone


async def execute(db: Any, scope: RequestScope, stmt: Statement, *, fetch: Fetch = Fetch.ROW,
                  read_only: bool = False, guard: bool = False, timezone: str | None = None,
                  check: Callable[[Outcome], None] | None = None,
                  after: Callable[[Any, Outcome], Awaitable[Any]] | None = None,
                  gucs: bool = True, rollback: bool = False) -> Outcome:
    """``read_only``: may run on the read replica; ``guard``: also make the transaction READ ONLY
    on the primary (GET on /rpc/, as PostgREST). ``check`` raises to roll back; ``after`` runs
    further queries in the same transaction (e.g. an EXPLAIN-based count)."""
    try:
        async with request_scope(db, scope, read_only=read_only) as conn:
            if guard:
                await conn.execute("SET TRANSACTION READ ONLY")
            out = Outcome(timezone=await _timezone(conn, timezone))
            if fetch is Fetch.ROW:
                out.row = await conn.fetchrow(stmt.text, *stmt.values)
            elif fetch is Fetch.ALL:
                out.rows = list(await conn.fetch(stmt.text, *stmt.values))
            else:
                tag = (await conn.execute(stmt.text, *stmt.values)).split()
                out.affected = int(tag[-1]) if tag and tag[-1].isdigit() else 0
            if check is not None:
                check(out)
            if after is not None:
                out.extra = await after(conn, out)
            if gucs:
                row = await conn.fetchrow(response.GUC_QUERY)
                # a malformed value raises here, before COMMIT, and so rolls the transaction back
                out.gucs = response.parse_gucs(row[0], row[1])
            if rollback:
                raise _Rollback(out)
    except _Rollback as done:
        return done.outcome
    return out
