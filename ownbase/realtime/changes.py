"""postgres_changes: capture, leader poller, and per-subscriber delivery under RLS.

Change source (see docs/realtime.md): a row trigger ``ownbase_realtime`` on every table of the
``supabase_realtime`` publication writes each row change into ``ownbase.realtime_changes``. That
works on any PostgreSQL, managed or not, without superuser, REPLICATION or a replication slot.

* Each *delivery group* (all processes sharing one Redis, or a single process without Redis) has
  one leader at a time (a session advisory lock keyed by the group, on a dedicated connection).
  The leader reads the log window by window (rows whose transaction finished before its
  snapshot's xmin, in (xid, id) order), publishes them on the group's bus, and stores its read
  position in ``ownbase.realtime_cursors`` so a new leader continues where the old one stopped
  (at-least-once across a leader crash, exactly once otherwise). A NOTIFY from the trigger wakes
  it at once; ``OWNBASE_REALTIME_CHANGE_POLL_MS`` is the fallback poll. Rows every live group has
  read are deleted.
* Every process receives every batch and delivers to the subscribers it holds: filters are applied
  to the row, then for each (role, claims) group one query under ``request_scope`` asks which of
  the batch's rows that role may SELECT (RLS decides), then columns are cut to what the role may
  read.
* A join installs the trigger (if missing) and registers its subscription *before* the join reply,
  so every change committed after the client hears SUBSCRIBED is in the queue and will be
  dispatched to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import asyncpg

from ownbase.db.pool import connect
from ownbase.db.scope import RequestScope, request_scope
from ownbase.realtime import filters
from ownbase.realtime.serializer import Frame, encode
from ownbase.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ownbase.context import Context
    from ownbase.realtime.channel import ChannelSub
    from ownbase.realtime.hub import Hub

log = logging.getLogger("ownbase.realtime")

TRIGGER = "ownbase_realtime"
BATCH = 1000
SYNC_EVERY = 5.0
INFO_TTL = 5.0
EVENTS = ("*", "INSERT", "UPDATE", "DELETE")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


# --- bindings ------------------------------------------------------------------------------
class BindingError(ValueError):
    pass


@dataclass(frozen=True)
class Binding:
    id: int
    event: str
    schema: str
    table: str | None
    filter: str | None
    select: tuple[str, ...] | None
    conditions: tuple[filters.Condition, ...]
    echo: dict[str, Any]

    @property
    def filter_columns(self) -> frozenset[str]:
        return frozenset(c.column for c in self.conditions)

    def prefilter(self, schema: str, table: str, op: str, row: dict[str, Any] | None) -> bool:
        """The cheap part: event, schema, table and the comparison conditions. Pattern
        conditions wait for ``match_patterns`` (after RLS), so a row the subscriber may not see
        costs it no pattern matching."""
        if self.event != "*" and self.event != op:
            return False
        if self.schema != "*" and self.schema != schema:
            return False
        if self.table is not None and self.table != "*" and self.table != table:
            return False
        return all(c.matches(row) for c in self.conditions if not c.expensive)

    def match_patterns(self, row: dict[str, Any] | None) -> bool:
        return all(c.matches(row) for c in self.conditions if c.expensive)

    def matches(self, schema: str, table: str, op: str, row: dict[str, Any] | None) -> bool:
        return self.prefilter(schema, table, op, row) and self.match_patterns(row)


def parse_binding(raw: Any) -> Binding:
    if not isinstance(raw, dict):
        raise BindingError("postgres_changes entries must be objects")
    event = str(raw.get("event") or "*").upper()
    if event not in EVENTS:
        raise BindingError(f"invalid event {raw.get('event')!r}")
    schema = raw.get("schema") or "public"
    table = raw.get("table") or None
    flt = raw.get("filter") or None
    select = raw.get("select")
    if not isinstance(schema, str) or (table is not None and not isinstance(table, str)):
        raise BindingError("schema and table must be strings")
    if select is not None and (not isinstance(select, list) or not all(isinstance(s, str) for s in select)):
        raise BindingError("select must be a list of column names")
    conditions = filters.parse(flt) if flt else ()
    key = "|".join([event, schema, table or "", flt or "", ",".join(select or [])])
    ident = zlib.crc32(key.encode()) & 0x7FFFFFFF
    echo: dict[str, Any] = {k: v for k, v in raw.items() if k in ("event", "schema", "table", "filter", "select")}
    echo["id"] = ident
    return Binding(ident, event, schema, table, flt, tuple(select) if select else None, conditions, echo)


# --- table metadata -----------------------------------------------------------------------
@dataclass
class TableInfo:
    oid: int
    schema: str
    name: str
    rls: bool
    replident: str
    columns: list[tuple[str, str]]  # (name, pg type name) in attribute order
    pk: list[str]
    loaded: float = field(default_factory=time.monotonic)


_INFO_SQL = """
select c.oid, n.nspname, c.relname, c.relrowsecurity, c.relreplident::text as replident,
  coalesce((select json_agg(json_build_array(a.attname, t.typname) order by a.attnum)
            from pg_attribute a join pg_type t on t.oid = a.atttypid
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as cols,
  coalesce((select json_agg(a.attname order by a.attnum)
            from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = c.oid and i.indisprimary), '[]') as pk
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.oid = $1
"""

_PRIV_SQL = """
select a.attname from pg_attribute a
where a.attrelid = $2 and a.attnum > 0 and not a.attisdropped
  and has_column_privilege($1, a.attrelid, a.attnum, 'SELECT')
"""

_POLICIES_SQL = """
select p.polpermissive, pg_get_expr(p.polqual, p.polrelid) as qual
from pg_policy p
where p.polrelid = $1 and p.polcmd in ('r', '*')
  and (0 = any(p.polroles)
       or exists (select 1 from unnest(p.polroles) r where r <> 0 and pg_has_role($2, r, 'MEMBER')))
"""

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



class Catalog:
    """Cached table metadata and per-role column privileges (refreshed every few seconds)."""

    def __init__(self, ctx: "Context") -> None:
        self.ctx = ctx
        self._tables: dict[int, TableInfo] = {}
        self._privs: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}
        self._bypass: dict[str, tuple[float, bool]] = {}
        self._policies: dict[tuple[str, int], tuple[float, str | None]] = {}

    async def table(self, oid: int) -> TableInfo | None:
        info = self._tables.get(oid)
        if info is not None and time.monotonic() - info.loaded < INFO_TTL:
            return info
        row = await self.ctx.db.owner.fetchrow(_INFO_SQL, oid)
        if row is None:
            self._tables.pop(oid, None)
            return None
        info = TableInfo(row["oid"], row["nspname"], row["relname"], row["relrowsecurity"],
                         row["replident"], [(c[0], c[1]) for c in row["cols"]], list(row["pk"]))
        self._tables[oid] = info
        return info

    async def readable(self, role: str, oid: int) -> frozenset[str]:
        hit = self._privs.get((role, oid))
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        rows = await self.ctx.db.owner.fetch(_PRIV_SQL, role, oid)
        cols = frozenset(r["attname"] for r in rows)
        self._privs[(role, oid)] = (time.monotonic(), cols)
        return cols

    async def policy_predicate(self, role: str, oid: int) -> str | None:
        """The SELECT policies that apply to ``role`` on the table, combined as PostgreSQL does
        (permissive ones OR'ed, restrictive ones AND'ed); None when no permissive policy applies."""
        hit = self._policies.get((role, oid))
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        rows = await self.ctx.db.owner.fetch(_POLICIES_SQL, oid, role)
        permissive = [r["qual"] for r in rows if r["polpermissive"]]
        restrictive = [r["qual"] for r in rows if not r["polpermissive"]]
        predicate: str | None = None
        if permissive:
            # A policy without USING grants nothing to SELECT here: count it as false (never leak).
            perm = " or ".join(f"coalesce(({q}), false)" if q else "false" for q in permissive)
            parts = [f"({perm})"] + [f"coalesce(({q}), false)" if q else "true" for q in restrictive]
            predicate = " and ".join(parts)
        self._policies[(role, oid)] = (time.monotonic(), predicate)
        return predicate

    async def bypasses_rls(self, role: str) -> bool:
        hit = self._bypass.get(role)
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        value = bool(await self.ctx.db.owner.fetchval(
            "select rolbypassrls from pg_roles where rolname = $1", role))
        self._bypass[role] = (time.monotonic(), value)
        return value


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
    import hashlib

    return int.from_bytes(hashlib.blake2b(group.encode(), digest_size=8).digest(), "big", signed=True)


class Capture:
    """The delivery group's leader: reads the change log window by window and publishes it.

    A window is every row whose writing transaction id lies between the previous snapshot xmin
    and the current one: all those transactions have finished, so a window never changes once
    read and a transaction that commits late falls into a later window instead of being skipped.
    """

    def __init__(self, ctx: "Context", publish: Callable[[dict[str, Any]], Awaitable[None]],
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
            changes = [
                {"id": r["id"], "oid": r["table_oid"], "schema": r["schema_name"], "table": r["table_name"],
                 "op": r["op"], "record": r["record"], "old": r["old_record"],
                 "ts": commit_timestamp(r["commit_ts"])}
                for r in rows
            ]
            await self.publish({"k": "c", "changes": changes})
        if len(rows) >= BATCH:
            last = rows[-1]
            new = (last["xid_text"], last["id"])
        else:
            new = (hi, 0)  # the window up to `hi` is complete
        if rows:
            await conn.execute(_SAVE_CURSOR_SQL, self.group, new[0], new[1])
        return new, len(rows) >= BATCH


# --- delivery ------------------------------------------------------------------------------
class Dispatcher:
    """Delivers change batches to this process's subscribers, in order, one batch at a time."""

    def __init__(self, ctx: "Context", hub: "Hub") -> None:
        self.ctx = ctx
        self.hub = hub
        self.catalog = Catalog(ctx)
        self.queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-dispatch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def submit(self, changes: list[dict[str, Any]]) -> None:
        if self.hub.has_pg_subscribers():
            self.queue.put_nowait(changes)

    async def _run(self) -> None:
        while True:
            batch = await self.queue.get()
            try:
                await self.deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("realtime: delivering a change batch failed")

    async def deliver(self, batch: list[dict[str, Any]]) -> None:
        plan: list[tuple[dict[str, Any], TableInfo, list[tuple["ChannelSub", list[Binding]]]]] = []
        checks: dict[tuple[int, tuple[str, str]], tuple[Any, dict[int, tuple[str, Any]]]] = {}
        for change in batch:
            subs = self.hub.pg_subscribers(change["schema"], change["table"])
            if not subs:
                continue
            info = await self.catalog.table(change["oid"])
            if info is None:
                continue
            row = change["old"] if change["op"] == "DELETE" else change["record"]
            targets = []
            for sub in subs:
                candidates = [b for b in sub.bindings
                              if b.prefilter(change["schema"], change["table"], change["op"], row)]
                if not candidates:
                    continue
                targets.append((sub, candidates))
                if info.rls and not await self.catalog.bypasses_rls(sub.ident.role):
                    key = (info.oid, sub.ident.group_key)
                    if key not in checks:
                        checks[key] = (sub.ident, {})
                    checks[key][1][change["id"]] = (change["op"], row)
            if targets:
                plan.append((change, info, targets))
        if not plan:
            return
        visible = await self._rls_visible(checks)
        for change, info, targets in plan:
            await self._send(change, info, targets, visible)

    async def _rls_visible(self, checks: dict[tuple[int, tuple[str, str]], tuple[Any, dict[int, tuple[str, Any]]]]
                           ) -> dict[tuple[int, tuple[str, str]], set[int]]:
        """Which changes each (role, claims) group may see: the table's SELECT policies are
        evaluated on the row *as captured* (so a row deleted right after its insert is still
        judged by its inserted values), under the group's role and claims."""
        out: dict[tuple[int, tuple[str, str]], set[int]] = {}
        for (oid, group), (ident, rows) in checks.items():
            info = await self.catalog.table(oid)
            if info is None or not rows:
                out[(oid, group)] = set()
                continue
            scope = RequestScope(ident.role, ident.claims, "GET", "/realtime/v1",
                                 statement_timeout_ms=self.ctx.settings.db_statement_timeout_ms)
            try:
                predicate = await self.catalog.policy_predicate(ident.role, oid)
                if predicate is None:
                    out[(oid, group)] = set()  # RLS on, no policy for this role: nothing visible
                    continue
                table = qualified(info.schema, info.name)
                sql = (
                    f"select e.__ownbase_i as i, coalesce(({predicate}), false) as ok "
                    f"from jsonb_array_elements($1::jsonb) with ordinality as e(__ownbase_j, __ownbase_i) "
                    f"cross join lateral jsonb_populate_record(null::{table}, e.__ownbase_j) as {quote_ident(info.name)}"
                )
                ids = list(rows)
                async with request_scope(self.ctx.db, scope) as conn:
                    result = await conn.fetch(sql, [rows[i][1] or {} for i in ids])
                out[(oid, group)] = {ids[r["i"] - 1] for r in result if r["ok"]}
            except asyncpg.PostgresError as exc:
                log.info("realtime: policy check on %s.%s failed for %s (%s); using the live row",
                         info.schema, info.name, ident.role, exc)
                out[(oid, group)] = await self._live_visible(info, scope, rows)
        return out

    async def _live_visible(self, info: TableInfo, scope: RequestScope,
                            rows: dict[int, tuple[str, Any]]) -> set[int]:
        """Fallback: which INSERT/UPDATE rows the role can SELECT in the table as it is now."""
        if not info.pk:
            return set()
        from ownbase.realtime.serializer import dumps

        wanted = {cid: _pk_key(info, row) for cid, (op, row) in rows.items() if op != "DELETE"}
        if not wanted:
            return set()
        table = qualified(info.schema, info.name)
        t_cols = ", ".join(f"t.{quote_ident(c)}" for c in info.pk)
        r_cols = ", ".join(f"r.{quote_ident(c)}" for c in info.pk)
        sql = (
            f"select jsonb_build_array({t_cols}) as k from {table} t where ({t_cols}) in "
            f"(select {r_cols} from jsonb_populate_recordset(null::{table}, $1::jsonb) r)"
        )
        try:
            async with request_scope(self.ctx.db, scope) as conn:
                found = {dumps(r["k"]) for r in await conn.fetch(sql, [rows[c][1] or {} for c in wanted])}
        except asyncpg.PostgresError as exc:
            log.info("realtime: RLS check on %s.%s failed: %s", info.schema, info.name, exc)
            return set()
        return {cid for cid, key in wanted.items() if key in found}

    async def _send(self, change: dict[str, Any], info: TableInfo,
                    targets: list[tuple["ChannelSub", list[Binding]]],
                    visible: dict[tuple[int, tuple[str, str]], set[int]]) -> None:
        cache: dict[tuple[str, tuple[str, ...] | None, bool], dict[str, Any] | None] = {}
        frames: dict[tuple[Any, ...], str | bytes] = {}
        row = change["old"] if change["op"] == "DELETE" else change["record"]
        for sub, candidates in targets:
            role = sub.ident.role
            bypass = await self.catalog.bypasses_rls(role)
            rls = info.rls and not bypass
            if rls and change["id"] not in visible.get((info.oid, sub.ident.group_key), set()):
                continue
            # Only now, for a row this subscriber may see: filters on columns it may not read
            # never match (they would leak the values), then the pattern conditions run.
            readable = await self.catalog.readable(role, info.oid)
            matched = [b for b in candidates if b.filter_columns <= readable and b.match_patterns(row)]
            if not matched:
                continue
            ids = [b.id for b in matched]
            select = None
            if all(b.select is not None for b in matched):
                select = tuple(dict.fromkeys(c for b in matched for c in b.select or ()))
            ckey = (role, select, rls)
            if ckey not in cache:
                cache[ckey] = await self._data(change, info, role, select, rls)
            data = cache[ckey]
            if data is None:
                continue
            # Many subscribers share topic, binding ids and role: encode each distinct frame once.
            fkey = (sub.topic, tuple(ids), ckey, sub.conn.vsn)
            frame = frames.get(fkey)
            if frame is None:
                frame = frames[fkey] = encode(
                    Frame(None, None, sub.topic, "postgres_changes", {"ids": ids, "data": data}), sub.conn.vsn)
            sub.conn.enqueue(frame)

    async def _data(self, change: dict[str, Any], info: TableInfo, role: str,
                    select: tuple[str, ...] | None, rls: bool) -> dict[str, Any] | None:
        readable = await self.catalog.readable(role, info.oid)
        if not readable:
            return None  # the role may not SELECT this table at all
        cols = [(n, t) for n, t in info.columns if n in readable and (select is None or n in select)]
        names = [n for n, _ in cols]
        op = change["op"]
        data: dict[str, Any] = {
            "schema": change["schema"],
            "table": change["table"],
            "commit_timestamp": change["ts"],
            "type": op,
            "columns": [{"name": n, "type": t} for n, t in cols],
            "errors": None,
        }
        if op in ("INSERT", "UPDATE"):
            record = change["record"] or {}
            data["record"] = {n: record.get(n) for n in names}
        if op in ("UPDATE", "DELETE"):
            old = change["old"] or {}
            if info.replident == "f" and not (op == "DELETE" and rls):
                data["old_record"] = {n: old.get(n) for n in names}
            else:
                data["old_record"] = {n: old.get(n) for n in info.pk if n in readable}
        return trim_oversized(data, self.ctx.settings.realtime_max_message_bytes)


SMALL_VALUE_BYTES = 64


def trim_oversized(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """A change bigger than the message limit keeps only its small values (JSON of at most 64
    bytes) and says so in ``errors``, as Supabase does."""
    from ownbase.realtime.serializer import dumps

    if len(dumps(data)) <= limit:
        return data
    for key in ("record", "old_record"):
        row = data.get(key)
        if isinstance(row, dict):
            data[key] = {k: v for k, v in row.items() if len(dumps(v)) <= SMALL_VALUE_BYTES}
    data["errors"] = ["Error 413: Payload Too Large"]
    return data


def _pk_key(info: TableInfo, record: dict[str, Any] | None) -> str:
    from ownbase.realtime.serializer import dumps

    record = record or {}
    return dumps([record.get(c) for c in info.pk])
