"""``migrate sync``: keep the target's app tables following the source by logical replication.

Start: a publication of the app tables on the source, a logical replication slot created with an
exported snapshot (a replication-protocol connection, hence psycopg), the initial copy of every
table at exactly that snapshot (``migrate data`` with it), then a subscription on the target that
applies everything after the snapshot. No gap, no duplicate. Replication runs inside PostgreSQL:
stopping (``--pause``) and starting again loses nothing, the slot keeps the position. Apply
workers run as replica, so app triggers do not fire. ``--finish`` sets sequences (logical
replication does not carry them), drops the subscription, the slot and the publication.

The auth tables (users, identities, sessions, refresh tokens, AMR claims) follow too when the
source role may publish them (on Supabase ``postgres`` is a member of their owner) and the target
has no users yet (or ``--recopy``): a password changed or a token refreshed on Supabase arrives.

Tables without a primary key or replica identity are left out of the publication (publishing
them would make the source refuse UPDATE/DELETE on them) and reported; copy them with
``migrate data --table`` at cut-over.

Objects (bytes) do not travel by replication: ``migrate files --sync`` (files_sync.py) catches
them up, ``--every N`` repeatedly, since this command returns once replication is set up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import psycopg

from ownbase.db.sql import quote_ident
from ownbase.migrate import catalog, data, progress, users
from ownbase.migrate.conn import connect, qliteral
from ownbase.migrate.progress import StepError
from ownbase.settings import Settings

NAME = "ownbase_migrate"  # publication, slot and subscription


async def status(source_url: str, target_url: str) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url)
    try:
        return await _status(src, tgt)
    finally:
        await src.close()
        await tgt.close()


async def _status(src: asyncpg.Connection, tgt: asyncpg.Connection) -> dict[str, Any]:
    sub = await tgt.fetchrow("select subenabled from pg_subscription where subname = $1", NAME)
    slot = await src.fetchrow(
        """select active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint as lag_bytes
           from pg_replication_slots where slot_name = $1""", NAME)
    stat = await tgt.fetchrow(
        """select extract(epoch from now() - last_msg_receipt_time)::float as since_message,
                  extract(epoch from now() - latest_end_time)::float as since_applied
           from pg_stat_subscription where subname = $1 and relid is null""", NAME)
    return {"subscription": None if sub is None else ("enabled" if sub["subenabled"] else "paused"),
            "slot_active": None if slot is None else slot["active"],
            "lag_bytes": None if slot is None else slot["lag_bytes"],
            "seconds_since_message": None if stat is None else stat["since_message"],
            "seconds_since_applied": None if stat is None else stat["since_applied"]}


AUTH_TABLES = ("users", "identities", "sessions", "refresh_tokens", "mfa_amr_claims")


async def _auth_tables(src: asyncpg.Connection, tgt: asyncpg.Connection) -> list[tuple[str, list[str]]]:
    """auth tables both sides have, with the columns to publish (what the target can hold)."""
    out = []
    for name in AUTH_TABLES:
        if await catalog.relation_exists(src, "auth", name) and await catalog.relation_exists(tgt, "auth", name):
            out.append((name, await users.common_columns(src, tgt, name)))
    return out


async def start(source_url: str, target_url: str, jobs: int, recopy: bool, settings: Settings) -> dict[str, Any]:
    src = await connect(source_url)
    tgt = await connect(target_url)
    try:
        await progress.ensure(tgt)
        sub = await tgt.fetchrow("select subenabled from pg_subscription where subname = $1", NAME)
        if sub is not None:  # running or paused: (re)enable, the slot resumes where it stopped
            if not sub["subenabled"]:
                await tgt.execute(f"alter subscription {NAME} enable")
            return {"ok": True, "started": False, **await _status(src, tgt)}
        if await src.fetchval("show wal_level") != "logical":
            raise StepError("the source's wal_level is not logical: use `migrate data` at cut-over instead"
                            " (see docs/migration/03-database.md)")
        schemas = await catalog.app_schemas(src)
        tables = await catalog.tables(src, schemas)
        done = await progress.done_items(tgt, "data")
        if done and not recopy:
            raise StepError("app tables were already copied by `migrate data` at an earlier moment; pass"
                            " --recopy to empty them on the target and copy them again at the replication"
                            " start point")
        notes: list[str] = []
        publishable, skipped = await _publishable(src, tables, notes)
        auth = await _auth_tables(src, tgt)
        if auth and await tgt.fetchval("select exists (select 1 from auth.users)") and not recopy:
            auth = []
            notes.append("users were already copied: they are not followed; run `migrate users` again at"
                         " cut-over, or start sync with --recopy to follow them too")
        if recopy:
            async with tgt.transaction():
                if tables:
                    await tgt.execute("truncate " + ", ".join(t.qualified for t in tables))
                if auth:  # a migration target holds only migrated users
                    await tgt.execute("truncate " + ", ".join(f"auth.{n}" for n, _ in auth) + " cascade")
                await tgt.execute("delete from ownbase.migrate_progress where step in ('data', 'users')")
        auth = await _publication(src, publishable, auth, notes)
        snapshot, repl = await asyncio.to_thread(_create_slot, source_url)
        try:
            if auth:  # first: app tables reference auth.users
                await users.run(source_url, target_url, True, None, settings, snapshot=snapshot)
            copied = await data.run(source_url, target_url, jobs, set(), snapshot=snapshot)
        except BaseException:
            await asyncio.to_thread(repl.close)
            await src.execute("select pg_drop_replication_slot($1)", NAME)
            raise
        await asyncio.to_thread(repl.close)  # the slot stays; the snapshot is no longer needed
        await tgt.execute(
            f"create subscription {NAME} connection {qliteral(source_url)} publication {NAME}"
            f" with (create_slot = false, slot_name = {NAME}, copy_data = false, enabled = true)")
        followed = [t.key for t in publishable] + [f"auth.{n}" for n, _ in auth]
        await progress.mark(tgt, "sync", "started", {"tables": followed})
        return {"ok": True, "started": True, "tables": [t.key for t in publishable],
                "auth_tables": [f"auth.{n}" for n, _ in auth], "not_replicated": skipped, "notes": notes,
                "copy": copied["tables"], **await _status(src, tgt)}
    finally:
        await src.close()
        await tgt.close()


async def _publishable(src: asyncpg.Connection, tables: list[catalog.Table],
                       notes: list[str]) -> tuple[list[catalog.Table], list[str]]:
    """Tables with a replica identity that this role may publish (it must own them: on Supabase
    ``postgres`` is no superuser, and owns what it created, not what supabase_admin did)."""
    ok, skipped = [], []
    for t in tables:
        row = await src.fetchrow(
            """select c.relreplident = 'f' or (c.relreplident = 'i' and exists (select 1 from pg_index i
                 where i.indrelid = c.oid and i.indisreplident))
               or (c.relreplident = 'd' and exists (select 1 from pg_index i
                                                    where i.indrelid = c.oid and i.indisprimary))
               or c.relkind = 'p' as has_identity,
               pg_has_role(c.relowner, 'usage') as owned, pg_get_userbyid(c.relowner) as owner, current_user as me
               from pg_class c where c.oid = $1::regclass""", t.qualified)
        if not row["has_identity"]:
            skipped.append(t.key)
        elif not row["owned"]:
            skipped.append(t.key)
            notes.append(f"{t.key} is not replicated: it is owned by {row['owner']} and only its owner (or a"
                         f" superuser) may publish it, which {row['me']} is not; it is copied now, copy it again"
                         f" at cut-over with `migrate data --table {t.key}` on the emptied table")
        else:
            ok.append(t)
    return ok, skipped


async def _publication(src: asyncpg.Connection, tables: list[catalog.Table], auth: list[tuple[str, list[str]]],
                       notes: list[str]) -> list[tuple[str, list[str]]]:
    """Publish the app tables, and the auth tables (with column lists) where this role may."""
    await src.execute(f"drop publication if exists {NAME}")
    if await src.fetchval("select exists (select 1 from pg_replication_slots where slot_name = $1)", NAME):
        await src.execute("select pg_drop_replication_slot($1)", NAME)  # left by an aborted start
    targets = ", ".join(t.qualified for t in tables)
    if not targets:
        raise StepError("no app table can be replicated (none has a primary key or replica identity)")
    options = "with (publish_via_partition_root = true)"
    if auth:
        with_auth = targets + ", " + ", ".join(
            f"auth.{quote_ident(n)} ({', '.join(quote_ident(c) for c in cols)})" for n, cols in auth)
        try:
            async with src.transaction():
                await src.execute(f"create publication {NAME} for table {with_auth} {options}")
            return auth
        except asyncpg.PostgresError as exc:  # not the owner of auth.*, or a server before column lists
            notes.append(f"users are not followed ({exc}); run `migrate users` again at cut-over")
    await src.execute(f"create publication {NAME} for table {targets} {options}")
    return []


def _create_slot(source_url: str) -> tuple[str, Any]:
    """Create the slot on a replication connection; its snapshot lives while that connection idles."""
    conn = psycopg.connect(source_url, replication="database", autocommit=True)
    slot = f"CREATE_REPLICATION_SLOT {quote_ident(NAME)} LOGICAL pgoutput (SNAPSHOT 'export')"
    res = conn.pgconn.exec_(slot.encode())
    if res.status != psycopg.pq.ExecStatus.TUPLES_OK:
        message = (res.error_message or b"").decode(errors="replace")
        conn.close()
        raise StepError(f"could not create the replication slot on the source: {message.strip()}")
    snapshot = res.get_value(0, 2)
    return (snapshot or b"").decode(), conn


async def pause(target_url: str) -> None:
    tgt = await connect(target_url)
    try:
        if await tgt.fetchval("select exists (select 1 from pg_subscription where subname = $1)", NAME):
            await tgt.execute(f"alter subscription {NAME} disable")
    finally:
        await tgt.close()


async def finish(source_url: str, target_url: str) -> dict[str, Any]:
    """Cut-over: sequences to the source's values, then replication removed on both sides."""
    src = await connect(source_url)
    tgt = await connect(target_url)
    try:
        seqs = await data._sequences(src, tgt, await catalog.app_schemas(src))
        if await tgt.fetchval("select exists (select 1 from pg_subscription where subname = $1)", NAME):
            await tgt.execute(f"drop subscription {NAME}")  # also drops the slot on the source
        if await src.fetchval("select exists (select 1 from pg_replication_slots where slot_name = $1)", NAME):
            await src.execute("select pg_drop_replication_slot($1)", NAME)
        await src.execute(f"drop publication if exists {NAME}")
        await progress.mark(tgt, "sync", "finished", {"sequences": seqs})
        return {"ok": True, "sequences": seqs}
    finally:
        await src.close()
        await tgt.close()
