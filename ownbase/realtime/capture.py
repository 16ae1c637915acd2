"""Change capture: the trigger that writes row changes into the change log, and the delivery
group's leader that reads the log window by window and publishes it on the bus.

Change source (see docs/realtime.md): a row trigger ``ownbase_realtime`` on every table of the
``supabase_realtime`` publication writes each row change into ``ownbase.realtime_changes``. That
works on any PostgreSQL, managed or not, without superuser, REPLICATION or a replication slot.

Each *delivery group* (all processes sharing one Redis, or a single process without Redis) has
one leader at a time (a session advisory lock keyed by the group, on a dedicated connection).
The leader reads the log window by window (rows whose transaction finished before its snapshot's
xmin, in (xid, id) order), publishes them on the group's bus, and stores its read position in
``ownbase.realtime_cursors`` so a new leader continues where the old one stopped (at-least-once
across a leader crash, exactly once otherwise). A NOTIFY from the trigger wakes it at once;
``OWNBASE_REALTIME_CHANGE_POLL_MS`` is the fallback poll. Rows every live group has read are
deleted.

A join installs the trigger (if missing) before its reply (``ensure_trigger``), so every change
committed after the client hears SUBSCRIBED is in the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import asyncpg

from ownbase.db.pool import connect
from ownbase.db.sql import quote_qualified as qualified
from ownbase.realtime.bus import Change, Changes, Publish
from ownbase.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ownbase.context import Context

log = logging.getLogger("ownbase.realtime")

TRIGGER = "ownbase_realtime"
BATCH = 1000
SYNC_EVERY = 5.0

_PUB_TABLES_SQL = """
select c.oid, p.schemaname, p.tablename
from pg_publication_tables p
join pg_namespace n on n.nspname = p.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
where p.pubname = 'supabase_realtime'
  and ($1::text = '*' or p.schemaname = $1::text)
  and ($2::text is null or $2::text = '*' or p.tablename = $2::text)
"""

_MISSING_TRIGGERS_SQL = """
select c.oid, p.schemaname, p.tablename
from pg_publication_tables p
join pg_namespace n on n.nspname = p.schemaname
join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
where p.pubname = 'supabase_realtime' and c.relkind in ('r', 'p')
  and not exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = $1)
"""

_STALE_TRIGGERS_SQL = """
select n.nspname, c.relname
from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
where t.tgname = $1 and not exists (
  select 1 from pg_publication_tables p
  where p.pubname = 'supabase_realtime' and p.schemaname = n.nspname and p.tablename = c.relname)
"""


# --- capture installation -------------------------------------------------------------------
async def publication_tables(conn: Any, schema: str, table: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(_PUB_TABLES_SQL, schema, table)


_TRIGGER_EXISTS_SQL = "select exists(select 1 from pg_trigger where tgrelid = $1 and tgname = $2)"
TRIGGER_LOCK = 7_305_110_401  # advisory lock serialising capture installation (per database)


async def ensure_trigger(conn: Any, oid: int, schema: str, table: str) -> None:
    if await conn.fetchval(_TRIGGER_EXISTS_SQL, oid, TRIGGER):
        return
    # Joins on several processes and the leaders' sync may all find the trigger missing at once;
    # one transaction-scoped lock makes them take turns instead of colliding in pg_trigger.
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1)", TRIGGER_LOCK)
        if await conn.fetchval(_TRIGGER_EXISTS_SQL, oid, TRIGGER):
            return
        await conn.execute(
            f"create trigger {TRIGGER} after insert or update or delete on {qualified(schema, table)}"
            " for each row execute function ownbase.realtime_capture()"
        )


async def sync_triggers(conn: asyncpg.Connection) -> None:
    for row in await conn.fetch(_MISSING_TRIGGERS_SQL, TRIGGER):
        try:
            await ensure_trigger(conn, row["oid"], row["schemaname"], row["tablename"])
        except asyncpg.PostgresError as exc:
            log.warning("realtime: cannot capture %s.%s: %s", row["schemaname"], row["tablename"], exc)
    for row in await conn.fetch(_STALE_TRIGGERS_SQL, TRIGGER):
        try:
            await conn.execute(f"drop trigger if exists {TRIGGER} on {qualified(row['nspname'], row['relname'])}")
        except asyncpg.PostgresError as exc:
            log.warning("realtime: cannot drop capture on %s.%s: %s", row["nspname"], row["relname"], exc)


def commit_timestamp(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- the leader ----------------------------------------------------------------------------
_HI_SQL = "select pg_snapshot_xmin(pg_current_snapshot())::text"
# The snapshot's running transactions, and those positively known to run in another database of
# the cluster (they cannot write to this database's log, so they need not hold the window back).
_SNAPSHOT_SQL = """
select pg_snapshot_xmax(s)::text as xmax, array(select x::text from pg_snapshot_xip(s) x) as xip
from pg_current_snapshot() s
"""
_OTHER_DB_XIDS_SQL = """
select backend_xid::text from pg_stat_activity
where backend_xid is not null
  and datid is distinct from (select oid from pg_database where datname = current_database())
"""


async def window_limit(conn: asyncpg.Connection) -> str:
    """The upper transaction id of the next window: the oldest transaction still running in this
    database (as far as can be told), else the snapshot's xmax. Must run inside the reading
    transaction so the window and the rows read come from the same snapshot."""
    snap = await conn.fetchrow(_SNAPSHOT_SQL)
    xip = [int(x) for x in snap["xip"]]
    if not xip:
        return snap["xmax"]
    try:
        other = {r[0] for r in await conn.fetch(_OTHER_DB_XIDS_SQL)}
    except asyncpg.PostgresError:
        other = set()
    mine = [x for x in xip if str(x % 4294967296) not in other]
    return str(min(mine)) if mine else snap["xmax"]


_READ_SQL = """
select id, table_oid, schema_name, table_name, op, record, old_record, commit_ts, xid::text as xid_text
from ownbase.realtime_changes c
where (c.xid, c.id) > ($1::text::xid8, $2::bigint) and c.xid < $3::text::xid8
order by c.xid, c.id
limit $4
"""
_SAVE_CURSOR_SQL = """
insert into ownbase.realtime_cursors(group_name, xid, id, updated_at)
values ($1, $2::text::xid8, $3, now())
on conflict (group_name) do update set xid = excluded.xid, id = excluded.id, updated_at = now()
"""
_LOAD_CURSOR_SQL = "select xid::text as xid, id from ownbase.realtime_cursors where group_name = $1"
_CLEANUP_SQL = """
with live as (
  select min(xid) as xid from ownbase.realtime_cursors where updated_at > now() - interval '10 minutes'
)
delete from ownbase.realtime_changes c using live where live.xid is not null and c.xid < live.xid
"""
_FORGET_SQL = "delete from ownbase.realtime_cursors where updated_at < now() - interval '1 hour'"


def lock_key(group: str) -> int:
    return int.from_bytes(hashlib.blake2b(group.encode(), digest_size=8).digest(), "big", signed=True)


class Capture:
    """The delivery group's leader: reads the change log window by window and publishes it.

    A window is every row whose writing transaction id lies between the previous snapshot xmin
    and the current one: all those transactions have finished, so a window never changes once
    read and a transaction that commits late falls into a later window instead of being skipped.
    """

    def __init__(self, ctx: "Context", publish: Publish,
                 group: str, wanted: Callable[[], bool]) -> None:
        self.ctx = ctx
        self.publish = publish
        self.group = group
        self.wanted = wanted  # False: nobody could want the rows (lone process, no subscriber)
        self.wake = asyncio.Event()
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-capture")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        settings = self.ctx.settings
        key = lock_key(self.group)
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.ctx.db.owner_url, settings)
                if not await conn.fetchval("select pg_try_advisory_lock($1)", key):
                    await conn.close()
                    conn = None
                    await asyncio.sleep(1.0)
                    continue
                self.is_leader = True
                await conn.add_listener("ownbase_realtime", lambda *_: self.wake.set())
                await sync_triggers(conn)
                row = await conn.fetchrow(_LOAD_CURSOR_SQL, self.group)
                cursor = (row["xid"], row["id"]) if row else (await conn.fetchval(_HI_SQL), 0)
                await conn.execute(_SAVE_CURSOR_SQL, self.group, cursor[0], cursor[1])
                synced = time.monotonic()
                while True:
                    self.wake.clear()
                    cursor, full = await self._drain(conn, cursor)
                    if full:
                        continue
                    try:
                        await asyncio.wait_for(self.wake.wait(), settings.realtime_change_poll_ms / 1000)
                    except asyncio.TimeoutError:
                        pass
                    if time.monotonic() - synced > SYNC_EVERY:
                        await sync_triggers(conn)
                        await conn.execute(_SAVE_CURSOR_SQL, self.group, cursor[0], cursor[1])
                        await conn.execute(_CLEANUP_SQL)
                        await conn.execute(_FORGET_SQL)
                        synced = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the leader loop must survive DB/Redis hiccups
                log.warning("realtime capture loop error: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                self.is_leader = False
                if conn is not None:
                    try:
                        await asyncio.shield(conn.close(timeout=2))
                    except BaseException:  # noqa: BLE001
                        conn.terminate()

    async def _drain(self, conn: asyncpg.Connection, cursor: tuple[str, int]) -> tuple[tuple[str, int], bool]:
        """Publish the next rows of the current window; return the new cursor and whether the
        batch was full (more rows are waiting)."""
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            hi = await window_limit(conn)
            if not self.wanted():
                rows = []
            else:
                rows = await conn.fetch(_READ_SQL, cursor[0], cursor[1], hi, BATCH)
        if rows:
            await self.publish(Changes([
                Change(r["id"], r["table_oid"], r["schema_name"], r["table_name"], r["op"], r["record"],
                       r["old_record"], commit_timestamp(r["commit_ts"]))
                for r in rows
            ]))
        if len(rows) >= BATCH:
            last = rows[-1]
            new = (last["xid_text"], last["id"])
        else:
            new = (hi, 0)  # the window up to `hi` is complete
        if rows:
            await conn.execute(_SAVE_CURSOR_SQL, self.group, new[0], new[1])
        return new, len(rows) >= BATCH

