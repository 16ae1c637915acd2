"""SQL for storage: every statement takes a connection, so callers choose the role it runs as
(the request scope for data-plane work, the owner pool for bookkeeping). Values are always
``$n`` parameters."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import asyncpg

BUCKET_COLUMNS = "id, name, owner, owner_id, public, file_size_limit, allowed_mime_types, type, created_at, updated_at"
OBJECT_COLUMNS = ("id, bucket_id, name, owner, owner_id, created_at, updated_at, last_accessed_at, metadata, "
                  "user_metadata, version")


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- buckets ---------------------------------------------------------------------------------

async def get_bucket(conn: asyncpg.Connection, bucket_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {BUCKET_COLUMNS} from storage.buckets where id = $1", bucket_id)


SORTABLE_BUCKET = {"id", "name", "created_at", "updated_at"}


async def list_buckets(conn: asyncpg.Connection, limit: int | None, offset: int, sort: str, order: str,
                       search: str | None) -> list[asyncpg.Record]:
    column = sort if sort in SORTABLE_BUCKET else "name"
    direction = "desc" if order.lower() == "desc" else "asc"
    args: list[Any] = []
    where = ""
    if search:
        args.append("%" + like_escape(search) + "%")
        where = f"where name ilike ${len(args)}"
    args += [limit, offset]
    return await conn.fetch(
        f"select {BUCKET_COLUMNS} from storage.buckets {where} order by {column} {direction} "
        f"limit ${len(args) - 1} offset ${len(args)}", *args)


async def create_bucket(conn: asyncpg.Connection, bucket_id: str, name: str, owner: str | None, public: bool,
                        size_limit: int | None, mimes: list[str] | None) -> None:
    await conn.execute(
        "insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types) "
        "values ($1, $2, $3::uuid, $3, $4, $5, $6)", bucket_id, name, owner, public, size_limit, mimes)


async def update_bucket(conn: asyncpg.Connection, bucket_id: str, fields: dict[str, Any]) -> bool:
    if not fields:
        row = await conn.fetchrow("select id from storage.buckets where id = $1", bucket_id)
        return row is not None
    sets = ", ".join(f"{col} = ${i + 2}" for i, col in enumerate(fields))
    row = await conn.fetchrow(
        f"update storage.buckets set {sets}, updated_at = now() where id = $1 returning id",
        bucket_id, *fields.values())
    return row is not None


async def bucket_has_objects(conn: asyncpg.Connection, bucket_id: str) -> bool:
    return bool(await conn.fetchval("select exists (select 1 from storage.objects where bucket_id = $1)", bucket_id))


async def delete_bucket(conn: asyncpg.Connection, bucket_id: str) -> bool:
    return await conn.fetchrow("delete from storage.buckets where id = $1 returning id", bucket_id) is not None


async def delete_all_objects(conn: asyncpg.Connection, bucket_id: str) -> int:
    rows = await conn.fetch("delete from storage.objects where bucket_id = $1 returning id", bucket_id)
    return len(rows)


# --- objects ---------------------------------------------------------------------------------

async def find_object(conn: asyncpg.Connection, bucket_id: str, name: str, *, for_update: bool = False
                      ) -> asyncpg.Record | None:
    lock = " for update" if for_update else ""
    return await conn.fetchrow(
        f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = $1 and name = $2{lock}", bucket_id, name)


async def insert_object(conn: asyncpg.Connection, bucket_id: str, name: str, owner: str | None, version: str,
                        metadata: dict[str, Any], user_metadata: Any) -> asyncpg.Record:
    return await conn.fetchrow(
        "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata) "
        "values ($1, $2, $3::uuid, $3, $4, $5::jsonb, $6::jsonb) returning " + OBJECT_COLUMNS,
        bucket_id, name, owner, version, metadata, user_metadata)


async def upsert_object(conn: asyncpg.Connection, bucket_id: str, name: str, owner: str | None, version: str,
                        metadata: dict[str, Any], user_metadata: Any) -> asyncpg.Record:
    return await conn.fetchrow(
        "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata) "
        "values ($1, $2, $3::uuid, $3, $4, $5::jsonb, $6::jsonb) "
        "on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id, "
        "version = excluded.version, metadata = excluded.metadata, user_metadata = excluded.user_metadata, "
        "last_accessed_at = now() returning " + OBJECT_COLUMNS,
        bucket_id, name, owner, version, metadata, user_metadata)


async def update_object(conn: asyncpg.Connection, bucket_id: str, name: str, owner: str | None, version: str,
                        metadata: dict[str, Any], user_metadata: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "update storage.objects set owner = $3::uuid, owner_id = $3, version = $4, metadata = $5::jsonb, "
        "user_metadata = $6::jsonb, last_accessed_at = now() where bucket_id = $1 and name = $2 returning "
        + OBJECT_COLUMNS, bucket_id, name, owner, version, metadata, user_metadata)


async def move_object(conn: asyncpg.Connection, bucket_id: str, name: str, dst_bucket: str, dst_name: str,
                      version: str, owner: str | None) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "update storage.objects set bucket_id = $3, name = $4, version = $5, owner = coalesce($6::text::uuid, owner), "
        "owner_id = coalesce($6::text, owner_id) where bucket_id = $1 and name = $2 returning " + OBJECT_COLUMNS,
        bucket_id, name, dst_bucket, dst_name, version, owner)


async def delete_object(conn: asyncpg.Connection, bucket_id: str, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "delete from storage.objects where bucket_id = $1 and name = $2 returning " + OBJECT_COLUMNS,
        bucket_id, name)


async def delete_objects(conn: asyncpg.Connection, bucket_id: str, names: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "delete from storage.objects where bucket_id = $1 and name = any($2::text[]) returning " + OBJECT_COLUMNS,
        bucket_id, names)


async def find_objects(conn: asyncpg.Connection, bucket_id: str, names: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = $1 and name = any($2::text[])",
        bucket_id, names)


LIST_SORT = {"name", "updated_at", "created_at", "last_accessed_at"}


async def list_objects(conn: asyncpg.Connection, bucket_id: str, prefix: str, search: str, limit: int, offset: int,
                       column: str, order: str) -> list[asyncpg.Record]:
    """One folder level under ``prefix``: objects, and folders as name-only entries."""
    column = column if column in LIST_SORT else "name"
    direction = "desc" if order.lower() == "desc" else "asc"
    if column == "name":
        order_by = f"lower(name) collate \"C\" {direction}, name collate \"C\" {direction}, id nulls first"
    else:
        order_by = f"(id is null) desc, {column} {direction} nulls last, name collate \"C\" asc"
    return await conn.fetch(
        f"""
        with rel as (
          select o.*, substr(o.name, length($2) + 1) as rest
          from storage.objects o
          where o.bucket_id = $1 and o.name like $3 escape '\\'
        ), items as (
          select distinct on (item, is_folder)
                 item as name,
                 case when is_folder then null else id end as id,
                 case when is_folder then null else updated_at end as updated_at,
                 case when is_folder then null else created_at end as created_at,
                 case when is_folder then null else last_accessed_at end as last_accessed_at,
                 case when is_folder then null else metadata end as metadata
          from (select split_part(rest, '/', 1) as item, strpos(rest, '/') > 0 as is_folder, * from rel) s
          where item <> '' and item ilike $4 escape '\\'
          order by item, is_folder
        )
        select * from items order by {order_by} limit $5 offset $6
        """,
        bucket_id, prefix, like_escape(prefix) + "%", like_escape(search) + "%", limit, offset)


V2_SORT = {"name", "updated_at", "created_at"}


async def list_objects_v2(conn: asyncpg.Connection, bucket_id: str, prefix: str, after: Any, limit: int,
                          descending: bool, delimiter: bool, column: str = "name") -> list[asyncpg.Record]:
    """Keys under ``prefix`` after the cursor ``after``; with ``delimiter`` each sub-folder
    collapses into one entry (``is_folder``) named ``<prefix><segment>/``. Sorted by name, or by
    ``created_at``/``updated_at`` with folders first (by name) and name breaking ties; the cursor
    is then ``(is_folder, timestamp, entry)`` of the last entry returned."""
    op, direction = ("<", "desc") if descending else (">", "asc")
    if delimiter:
        entry = ("case when strpos(substr(name, length($2) + 1), '/') > 0 then $2 || "
                 "split_part(substr(name, length($2) + 1), '/', 1) || '/' else name end")
    else:
        entry = "name"
    args: list[Any] = [bucket_id, prefix, like_escape(prefix) + "%", limit]
    if column not in V2_SORT or column == "name":
        args.append(after)
        where = f"$5::text is null or entry {op} $5::text collate \"C\""
        order_by = f"entry {direction}"
    else:
        folder, ts, name = after if after is not None else (None, None, None)
        args += [folder, ts, name]
        where = (f"$5::bool is null or (is_folder and $5 and entry {op} $7::text collate \"C\") "
                 f"or (not is_folder and $5) "
                 f"or (not is_folder and not $5 and ({column}, entry) {op} ($6::timestamptz, $7::text collate \"C\"))")
        order_by = f"is_folder desc, {column} {direction}, entry {direction}"
    return await conn.fetch(
        f"""
        select * from (
          select distinct on (entry) entry, (entry <> name) as is_folder,
                 case when entry = name then id end as id, name,
                 case when entry = name then updated_at end as updated_at,
                 case when entry = name then created_at end as created_at,
                 last_accessed_at, metadata, version
          from (select ({entry}) collate "C" as entry, o.* from storage.objects o
                where o.bucket_id = $1 and starts_with(o.name, $2::text) and o.name like $3 escape '\\') s
          order by entry, name collate "C"
        ) e
        where {where}
        order by {order_by}
        limit $4
        """,
        *args)


# --- bookkeeping (owner pool) ------------------------------------------------------------------

async def pending_add(conn: asyncpg.Connection, bucket_id: str, name: str, version: str) -> None:
    await conn.execute(
        "insert into ownbase.storage_pending_blobs (bucket_id, name, version, kind) values ($1, $2, $3, 'upload') "
        "on conflict do nothing", bucket_id, name, version)


async def pending_drop(conn: asyncpg.Connection, bucket_id: str, name: str, version: str) -> None:
    await conn.execute(
        "delete from ownbase.storage_pending_blobs where bucket_id = $1 and name = $2 and version = $3 "
        "and kind = 'upload'", bucket_id, name, version)


async def claim_garbage(conn: asyncpg.Connection, stale_upload_seconds: int, limit: int = 1000,
                        bucket_id: str | None = None) -> list[asyncpg.Record]:
    """Claim (delete and return) entries whose blob no committed row references: all garbage,
    and uploads older than ``stale_upload_seconds`` (their writer died)."""
    return await conn.fetch(
        """
        delete from ownbase.storage_pending_blobs p
        where ctid in (
          select ctid from ownbase.storage_pending_blobs q
          where (q.kind = 'garbage' or q.created_at < now() - make_interval(secs => $1))
            and ($3::text is null or q.bucket_id = $3)
          limit $2 for update skip locked)
        returning p.bucket_id, p.name, p.version,
          exists (select 1 from storage.objects o where o.bucket_id = p.bucket_id and o.name = p.name
                  and o.version = p.version) as referenced
        """, stale_upload_seconds, limit, bucket_id)


async def garbage_restore(conn: asyncpg.Connection, bucket_id: str, name: str, version: str) -> None:
    await conn.execute(
        "insert into ownbase.storage_pending_blobs (bucket_id, name, version, kind) values ($1, $2, $3, 'garbage') "
        "on conflict do nothing", bucket_id, name, version)


async def names_blob_of_object(conn: asyncpg.Connection, bucket_id: str, splits: list[tuple[str, str]]) -> bool:
    """Whether some (name, version) pair is an object's blob, committed or being uploaded."""
    names, versions = [n for n, _ in splits], [v for _, v in splits]
    return bool(await conn.fetchval(
        """
        select exists (select 1 from storage.objects o join unnest($2::text[], $3::text[]) s(name, version)
                       on o.name = s.name and o.version = s.version where o.bucket_id = $1)
            or exists (select 1 from ownbase.storage_pending_blobs p
                       join unnest($2::text[], $3::text[]) s(name, version)
                       on p.name = s.name and p.version = s.version where p.bucket_id = $1)
        """, bucket_id, names, versions))


def metadata_json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value


# --- TUS resumable uploads (owner pool) --------------------------------------------------------

TUS_COLUMNS = ("id, bucket_id, name, version, upload_length, upload_offset, part_offsets, part_keys, content_type, "
               "cache_control, user_metadata, upsert, role, claims, expires_at")


async def tus_insert(conn: asyncpg.Connection, upload_id: str, bucket_id: str, name: str, version: str, length: int,
                     content_type: str, cache_control: str, user_metadata: Any, upsert: bool, role: str,
                     claims: dict[str, Any], expires_at: datetime) -> None:
    await conn.execute(
        "insert into ownbase.storage_tus_uploads (id, bucket_id, name, version, upload_length, content_type, "
        "cache_control, user_metadata, upsert, role, claims, expires_at) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12)",
        upload_id, bucket_id, name, version, length, content_type, cache_control, user_metadata, upsert, role,
        claims, expires_at)


async def tus_get(conn: asyncpg.Connection, upload_id: str, *, live: bool = True) -> asyncpg.Record | None:
    """The upload; with ``live`` only while it has not expired."""
    alive = " and expires_at > now()" if live else ""
    return await conn.fetchrow(f"select {TUS_COLUMNS} from ownbase.storage_tus_uploads where id = $1{alive}",
                               upload_id)


async def tus_lock(conn: asyncpg.Connection, upload_id: str, token: str, offset: int, lease_seconds: float) -> bool:
    """Take the upload's lease for one PATCH at ``offset``; False when someone else holds it
    (or the offset moved on, or the upload is gone)."""
    row = await conn.fetchrow(
        "update ownbase.storage_tus_uploads set lock_token = $2, locked_until = now() + make_interval(secs => $4) "
        "where id = $1 and upload_offset = $3 and expires_at > now() "
        "and (lock_token is null or locked_until < now()) returning id", upload_id, token, offset, lease_seconds)
    return row is not None


async def tus_renew(conn: asyncpg.Connection, upload_id: str, token: str, lease_seconds: float) -> bool:
    row = await conn.fetchrow(
        "update ownbase.storage_tus_uploads set locked_until = now() + make_interval(secs => $3) "
        "where id = $1 and lock_token = $2 returning id", upload_id, token, lease_seconds)
    return row is not None


async def tus_unlock(conn: asyncpg.Connection, upload_id: str, token: str) -> None:
    await conn.execute(
        "update ownbase.storage_tus_uploads set lock_token = null, locked_until = null "
        "where id = $1 and lock_token = $2", upload_id, token)


async def tus_append(conn: asyncpg.Connection, upload_id: str, token: str, offset: int, new_offset: int,
                     part_key: str) -> bool:
    """Record a written part, only for the lease holder at the offset it started from."""
    row = await conn.fetchrow(
        "update ownbase.storage_tus_uploads set upload_offset = $4, part_offsets = part_offsets || $3::bigint, "
        "part_keys = part_keys || $5::text where id = $1 and lock_token = $2 and upload_offset = $3 returning id",
        upload_id, token, offset, new_offset, part_key)
    return row is not None


async def tus_delete(conn: asyncpg.Connection, upload_id: str) -> None:
    await conn.execute("delete from ownbase.storage_tus_uploads where id = $1", upload_id)


async def tus_expired(conn: asyncpg.Connection, limit: int = 1000) -> list[asyncpg.Record]:
    """Uploads past Upload-Expires that no PATCH holds right now."""
    return await conn.fetch(
        f"select {TUS_COLUMNS} from ownbase.storage_tus_uploads where expires_at <= now() "
        "and (lock_token is null or locked_until < now()) limit $1", limit)
