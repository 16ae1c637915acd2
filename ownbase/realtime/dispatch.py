"""Delivery of captured changes to this process's subscribers.

Every process receives every batch and delivers to the subscribers it holds, in three steps,
cheapest first: bindings' event/table/comparison conditions are applied to the row; then for each
(role, claims) group one query under ``request_scope`` asks which of the batch's rows that role
may SELECT (RLS decides, on the row as captured); only then, for rows the subscriber may see,
pattern conditions run and columns are cut to what the role may read.

The dispatcher is given what it needs from the hub as callables (who subscribes to a table, does
anyone subscribe at all), not the hub itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

import asyncpg

from ownbase.db.scope import RequestScope, request_scope
from ownbase.db.sql import quote_ident
from ownbase.db.sql import quote_qualified as qualified
from ownbase.realtime.bindings import Binding
from ownbase.realtime.bus import Change
from ownbase.realtime.catalog import Catalog, TableInfo
from ownbase.realtime.serializer import Frame, Outgoing, dumps, outgoing
from ownbase.realtime.tokens import Identity
from ownbase.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ownbase.context import Context

log = logging.getLogger("ownbase.realtime")


class Outbox(Protocol):
    vsn: str

    def enqueue(self, message: Outgoing) -> None: ...


class Subscriber(Protocol):
    """What delivery needs of a joined channel."""

    topic: str
    ident: Identity
    bindings: list[Binding]

    @property
    def conn(self) -> Outbox: ...


Subscribers = Callable[[str, str], "set[Subscriber]"]


class Dispatcher:
    """Delivers change batches to this process's subscribers, in order, one batch at a time."""

    def __init__(self, ctx: "Context", subscribers: Subscribers, has_subscribers: Callable[[], bool]) -> None:
        self.ctx = ctx
        self.subscribers = subscribers
        self.has_subscribers = has_subscribers
        self.catalog = Catalog(ctx)
        self.queue: asyncio.Queue[list[Change]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-dispatch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def submit(self, changes: list[Change]) -> None:
        if self.has_subscribers():
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

    async def deliver(self, batch: list[Change]) -> None:
        plan: list[tuple[Change, TableInfo, list[tuple[Subscriber, list[Binding]]]]] = []
        checks: dict[tuple[int, tuple[str, str]], tuple[Any, dict[int, tuple[str, Any]]]] = {}
        for change in batch:
            subs = self.subscribers(change.schema, change.table)
            if not subs:
                continue
            info = await self.catalog.table(change.oid)
            if info is None:
                continue
            row = change.row
            targets = []
            # Thousands of subscribers usually share a few bindings: each distinct binding is
            # judged once per change, and RLS bypass once per role.
            pre: dict[str, bool] = {}
            bypass: dict[str, bool] = {}
            for sub in subs:
                candidates = []
                for b in sub.bindings:
                    ok = pre.get(b.key)
                    if ok is None:
                        ok = pre[b.key] = b.prefilter(change.schema, change.table, change.op, row)
                    if ok:
                        candidates.append(b)
                if not candidates:
                    continue
                targets.append((sub, candidates))
                role = sub.ident.role
                if role not in bypass:
                    bypass[role] = await self.catalog.bypasses_rls(role)
                if info.rls and not bypass[role]:
                    key = (info.oid, sub.ident.group_key)
                    if key not in checks:
                        checks[key] = (sub.ident, {})
                    checks[key][1][change.id] = (change.op, row)
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

    async def _send(self, change: Change, info: TableInfo,
                    targets: list[tuple[Subscriber, list[Binding]]],
                    visible: dict[tuple[int, tuple[str, str]], set[int]]) -> None:
        cache: dict[tuple[str, tuple[str, ...] | None, bool], dict[str, Any] | None] = {}
        frames: dict[tuple[Any, ...], Outgoing] = {}
        readable_by_role: dict[str, frozenset[str]] = {}
        # What a subscriber gets depends only on its topic, identity (role; claims under RLS),
        # serializer and matching bindings: subscribers alike share one decision and one frame.
        decided: dict[tuple[Any, ...], Outgoing | None] = {}
        for sub, candidates in targets:
            ident = sub.ident
            shape = (sub.topic, ident.group_key if info.rls else ident.role, sub.conn.vsn,
                     tuple([b.key for b in candidates]))
            if shape in decided:
                out = decided[shape]
            else:
                out = decided[shape] = await self._decide(change, info, sub, candidates, visible, cache,
                                                          frames, readable_by_role)
            if out is not None:
                sub.conn.enqueue(out)

    async def _decide(self, change: Change, info: TableInfo, sub: Subscriber, candidates: list[Binding],
                      visible: dict[tuple[int, tuple[str, str]], set[int]],
                      cache: dict[tuple[str, tuple[str, ...] | None, bool], dict[str, Any] | None],
                      frames: dict[tuple[Any, ...], Outgoing],
                      readable_by_role: dict[str, frozenset[str]]) -> Outgoing | None:
        """The frame one subscriber gets for one change, or None."""
        role = sub.ident.role
        bypass = await self.catalog.bypasses_rls(role)
        rls = info.rls and not bypass
        if rls and change.id not in visible.get((info.oid, sub.ident.group_key), set()):
            return None
        # Only now, for a row this subscriber may see: filters on columns it may not read
        # never match (they would leak the values), then the pattern conditions run.
        readable = readable_by_role.get(role)
        if readable is None:
            readable = readable_by_role[role] = await self.catalog.readable(role, info.oid)
        row = change.row
        matched = [b for b in candidates if b.filter_columns <= readable and b.match_patterns(row)]
        if not matched:
            return None
        ids = [b.id for b in matched]
        select = None
        if all(b.select is not None for b in matched):
            select = tuple(dict.fromkeys(c for b in matched for c in b.select or ()))
        ckey = (role, select, rls)
        if ckey not in cache:
            cache[ckey] = await self._data(change, info, role, select, rls)
        data = cache[ckey]
        if data is None:
            return None
        # Many subscribers share topic, binding ids and role: encode each distinct frame once.
        fkey = (sub.topic, tuple(ids), ckey, sub.conn.vsn)
        frame = frames.get(fkey)
        if frame is None:
            frame = frames[fkey] = outgoing(
                Frame(None, None, sub.topic, "postgres_changes", {"ids": ids, "data": data}), sub.conn.vsn)
        return frame

    async def _data(self, change: Change, info: TableInfo, role: str,
                    select: tuple[str, ...] | None, rls: bool) -> dict[str, Any] | None:
        readable = await self.catalog.readable(role, info.oid)
        if not readable:
            return None  # the role may not SELECT this table at all
        cols = [(n, t) for n, t in info.columns if n in readable and (select is None or n in select)]
        names = [n for n, _ in cols]
        op = change.op
        data: dict[str, Any] = {
            "schema": change.schema,
            "table": change.table,
            "commit_timestamp": change.ts,
            "type": op,
            "columns": [{"name": n, "type": t} for n, t in cols],
            "errors": None,
        }
        if op in ("INSERT", "UPDATE"):
            record = change.record or {}
            data["record"] = {n: record.get(n) for n in names}
        if op in ("UPDATE", "DELETE"):
            old = change.old or {}
            if info.replident == "f" and not (op == "DELETE" and rls):
                data["old_record"] = {n: old.get(n) for n in names}
            else:
                data["old_record"] = {n: old.get(n) for n in info.pk if n in readable}
        return trim_oversized(data, self.ctx.settings.realtime_max_message_bytes)


SMALL_VALUE_BYTES = 64


def trim_oversized(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """A change bigger than the message limit keeps only its small values (JSON of at most 64
    bytes) and says so in ``errors``, as Supabase does."""
    if len(dumps(data)) <= limit:
        return data
    for key in ("record", "old_record"):
        row = data.get(key)
        if isinstance(row, dict):
            data[key] = {k: v for k, v in row.items() if len(dumps(v)) <= SMALL_VALUE_BYTES}
    data["errors"] = ["Error 413: Payload Too Large"]
    return data


def _pk_key(info: TableInfo, record: dict[str, Any] | None) -> str:
    record = record or {}
    return dumps([record.get(c) for c in info.pk])

