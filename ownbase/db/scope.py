"""The request-scope helper every service uses for data-plane work.

One transaction on the authenticator pool; one statement switches the role and sets the claims
(and the request GUCs PostgREST sets), so RLS policies and ``auth.uid()`` see the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

import asyncpg
from asyncpg.transaction import Transaction

from ownbase.db.pool import UNREACHABLE, Database

ALLOWED_ROLES = frozenset({"anon", "authenticated", "service_role"})

_SET_CONTEXT = """
select set_config('role', $1, true),
       set_config('request.jwt.claims', $2, true),
       set_config('request.jwt.claim.sub', $3, true),
       set_config('request.jwt.claim.role', $1, true),
       set_config('request.method', $4, true),
       set_config('request.path', $5, true),
       set_config('request.headers', $6, true),
       set_config('statement_timeout', $7, true)
"""


@dataclass(frozen=True)
class RequestScope:
    role: str
    claims: Mapping[str, Any]
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    statement_timeout_ms: int = 0


def _scope_values(scope: RequestScope) -> list[str]:
    """role, claims, sub, method, path, headers: the GUCs every request sets."""
    if scope.role not in ALLOWED_ROLES:
        # Never let a claim choose an arbitrary database role.
        raise ValueError(f"role {scope.role!r} is not a request role")
    sub = scope.claims.get("sub")
    return [
        scope.role,
        json.dumps(dict(scope.claims)),
        sub if isinstance(sub, str) else "",
        scope.method,
        scope.path,
        json.dumps({k.lower(): v for k, v in scope.headers.items() if k.lower() != "authorization"}),
    ]


async def apply_scope(conn: asyncpg.Connection, scope: RequestScope) -> None:
    await conn.execute(_SET_CONTEXT, *_scope_values(scope), str(scope.statement_timeout_ms))


_SCOPED_READ = ("select total, page_total, body, response_headers, response_status "
                "from ownbase.scoped_read_prepared($1::text[], $2::text, $3::text, $4::text[], $5::text)")

PREPARED_READS_PER_CONNECTION = 100  # statement shapes kept prepared on one connection (LRU)


class PreparedReads:
    """Which read statements one connection has prepared (``ownbase.scoped_read_prepared``,
    migration 0211): statement text -> server-side name, least recently used first. Bounded, so
    a client inventing query shapes cannot grow the server's memory; an evicted name is
    deallocated on the connection's next read. A name is a digest of the text, so a statement
    whose first run failed (prepared, but not remembered here) is prepared again under the same
    name, which replaces the server's copy instead of leaking it."""

    def __init__(self, limit: int = PREPARED_READS_PER_CONNECTION) -> None:
        self.limit = limit
        self.names: OrderedDict[str, str] = OrderedDict()
        self.evicted: list[str] = []

    def lookup(self, statement: str) -> tuple[str, bool]:
        """(name, already prepared) for ``statement``; a new one is remembered only by ``done``."""
        name = self.names.get(statement)
        if name is not None:
            self.names.move_to_end(statement)
            return name, True
        return "ownbase_read_" + hashlib.blake2b(statement.encode(), digest_size=16).hexdigest(), False

    def done(self, statement: str, name: str, evicted: str | None) -> None:
        """The server ran ``name`` (and deallocated ``evicted`` first)."""
        for gone in (evicted, name):  # deallocated, or prepared afresh by this call
            if gone in self.evicted:
                self.evicted.remove(gone)
        if statement not in self.names:
            self.names[statement] = name
            if len(self.names) > self.limit:
                self.evicted.append(self.names.popitem(last=False)[1])

    def forget(self) -> None:
        """The session lost its prepared statements (e.g. DISCARD ALL): prepare again."""
        self.names.clear()
        self.evicted.clear()


async def scoped_read(db: Database, scope: RequestScope, statement: str, args: list[str]) -> asyncpg.Record:
    """Run one read statement as the scope's role in a single round trip (see migrations
    0210_scoped_read.sql and 0211_scoped_read_prepared.sql): its placeholders are ``$1[n]``, its
    values ``args``. The statement must return one row ``total, page_total, body``; the result
    adds ``response_headers`` and ``response_status`` as the statement left those settings. The
    statement is prepared on the connection the first time its shape runs there and executed by
    name after that, so PostgreSQL parses and plans it once per connection, not per request. The
    statement timeout is a session setting here (it has to be armed before the statement starts),
    changed only when it differs from the connection's."""
    values = _scope_values(scope)
    if db.read is not None and db.replica_usable():
        try:
            row = await _scoped_read_on(db.read, scope, values, statement, args)
        except UNREACHABLE as exc:
            db.replica.failed(exc)  # a read is safe to run again: on the primary below
        else:
            db.replica.answered()
            return row
    return await _scoped_read_on(db.api, scope, values, statement, args)


async def _scoped_read_on(pool: asyncpg.Pool, scope: RequestScope, values: list[str], statement: str,
                          args: list[str]) -> asyncpg.Record:
    async with pool.acquire() as conn:
        await conn.ensure_statement_timeout(str(scope.statement_timeout_ms))
        reads: PreparedReads = conn.prepared_reads()
        name, known = reads.lookup(statement)
        evict = reads.evicted[0] if reads.evicted else None
        try:
            row = await conn.fetchrow(_SCOPED_READ, values, name, None if known else statement, args, evict)
        except asyncpg.InvalidSQLStatementNameError:
            # the session lost its prepared statements (DEALLOCATE ALL / DISCARD ALL run by a
            # function): ours and asyncpg's own are gone; prepare both again, once
            reads.forget()
            await conn.reload_schema_state()
            row = await conn.fetchrow(_SCOPED_READ, values, name, statement, args, None)
            evict = None
        reads.done(statement, name, evict)
        return row


async def _begin(pool: asyncpg.Pool, scope: RequestScope, readonly: bool
                 ) -> tuple[asyncpg.Connection, Transaction]:
    conn = await pool.acquire()
    try:
        tx = conn.transaction(readonly=readonly)
        await tx.start()
        await apply_scope(conn, scope)
    except BaseException:
        await pool.release(conn)
        raise
    return conn, tx


@asynccontextmanager
async def request_scope(
    db: Database, scope: RequestScope, *, read_only: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection inside a transaction running as the scope's role with its claims.

    ``read_only`` work goes to the replica when there is one; if the replica cannot be reached
    the transaction is begun on the primary instead (nothing has run yet, so that is safe)."""
    begun: tuple[asyncpg.Connection, Transaction] | None = None
    pool = db.api
    if read_only and db.read is not None and db.replica_usable():
        try:
            begun = await _begin(db.read, scope, True)
            pool = db.read
            db.replica.answered()
        except UNREACHABLE as exc:
            db.replica.failed(exc)
    if begun is None:
        begun = await _begin(db.api, scope, False)
    conn, tx = begun
    try:
        try:
            yield conn
        except BaseException:
            await tx.rollback()
            raise
        else:
            await tx.commit()
    finally:
        await pool.release(conn)
