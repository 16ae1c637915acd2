"""Start-up database work under one PostgreSQL advisory lock.

Bundled migrations, the authenticator role, grants and each service's ``prepare`` hook all change
the catalog; run by several processes at once (``--workers N``, two ECS tasks, a rolling deploy)
they collide (``tuple concurrently updated`` on ALTER ROLE). One session-level advisory lock on a
fixed key makes exactly one process do the work while the others wait, then find it done.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import asyncpg

from ownbase.db.migrate import LOCK_KEY

# The same key as the migration runner's own lock: session-level advisory locks stack within a
# session, so apply_migrations inside the start-up lock re-enters it, and `ownbase db migrate`
# on another machine waits for a starting server (and the other way round).
STARTUP_LOCK_KEY = LOCK_KEY


class StartupLockTimeout(Exception):
    """Another process held the start-up lock for longer than we were willing to wait."""


@asynccontextmanager
async def startup_lock(conn: asyncpg.Connection, timeout_seconds: float,
                       on_wait: Callable[[], None]) -> AsyncIterator[None]:
    """Hold the start-up lock on ``conn`` for the body; wait at most ``timeout_seconds`` for it."""
    if not await conn.fetchval("select pg_try_advisory_lock($1)", STARTUP_LOCK_KEY):
        on_wait()
        # lock_timeout bounds heavyweight-lock waits, advisory locks included; the wait ends the
        # moment the holder releases, without polling.
        await conn.execute("select set_config('lock_timeout', $1, false)", f"{int(timeout_seconds * 1000)}ms")
        try:
            await conn.execute("select pg_advisory_lock($1)", STARTUP_LOCK_KEY)
        except asyncpg.LockNotAvailableError:
            raise StartupLockTimeout(
                f"another ownbase held the start-up lock (pg_advisory_lock {STARTUP_LOCK_KEY}) for more "
                f"than {timeout_seconds:g} s (OWNBASE_DB_STARTUP_LOCK_TIMEOUT); if no other ownbase is "
                "starting, find the session holding it in pg_locks (locktype 'advisory') and end it"
            ) from None
        finally:
            await conn.execute("select set_config('lock_timeout', '0', false)")
    try:
        yield
    finally:
        await conn.execute("select pg_advisory_unlock($1)", STARTUP_LOCK_KEY)
