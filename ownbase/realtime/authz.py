"""Private channels: RLS policies on ``realtime.messages`` decide, with ``realtime.topic()`` set to
the channel name, exactly as on Supabase.

* read (join, receive): a probe row for the topic is inserted by the owner, then the caller's
  role+claims are switched on and ``select`` must see it.
* write (broadcast / presence send): the caller's role inserts a row, which the INSERT policy's
  WITH CHECK must accept.
Both run in a transaction that is always rolled back, so nothing is stored.
"""

from __future__ import annotations

import asyncpg

from ownbase.db.pool import Database
from ownbase.db.scope import RequestScope, apply_scope
from ownbase.realtime.tokens import Identity

_SET_TOPIC = "select set_config('realtime.topic', $1, true)"


class _Rollback(Exception):
    pass


async def can_read(db: Database, ident: Identity, topic: str, extension: str = "broadcast") -> bool:
    async with db.owner.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(_SET_TOPIC, topic)
            await conn.execute(
                "insert into realtime.messages(topic, extension, private) values ($1, $2, true)",
                topic, extension,
            )
            # From here on the caller's role and claims apply (transaction-local SET ROLE).
            await apply_scope(conn, RequestScope(ident.role, ident.claims, "GET", "/realtime/v1"))
            found = await conn.fetchval(
                "select count(*) from realtime.messages where topic = $1 and extension = $2",
                topic, extension,
            )
            return bool(found)
        except asyncpg.PostgresError:
            return False
        finally:
            await tx.rollback()


async def can_write(db: Database, ident: Identity, topic: str, extension: str = "broadcast") -> bool:
    async with db.api.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await apply_scope(conn, RequestScope(ident.role, ident.claims, "POST", "/realtime/v1"))
            await conn.execute(_SET_TOPIC, topic)
            await conn.execute(
                "insert into realtime.messages(topic, extension, private) values ($1, $2, true)",
                topic, extension,
            )
            return True
        except asyncpg.PostgresError:
            return False
        finally:
            await tx.rollback()
