"""The storage domain service: access through RLS, blobs through the backend, rows through SQL.

Ordering rules that keep rows and blobs consistent:
- upload: RLS is tested (statement rolled back) before any byte is stored; the blob goes to a
  fresh version key registered as "upload" in the pending table; the row pointing at it commits
  only after the blob is complete; any failure deletes the blob.
- replace / move / delete: the row change commits first (a trigger records the now-unreferenced
  old blob as garbage in the same transaction), then the blob is removed (``reap``). A crash in
  between leaves garbage the sweeper removes; it never leaves a row without its blob.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterator
from urllib.parse import quote

import asyncpg

from ownbase.context import Context
from ownbase.db.scope import RequestScope, request_scope
from ownbase.http.auth_context import AuthContext
from ownbase.storage import db, errors
from ownbase.storage.backends import build_backend
from ownbase.storage.backends.base import Backend
from ownbase.storage.body import UploadBody
from ownbase.storage.paths import check_bucket_name, check_key, mime_allowed, parse_size, version_like_splits
from ownbase.storage.signing import Signer
from ownbase.storage.streams import readahead

log = logging.getLogger("ownbase.storage")

SERVICE_AUTH = AuthContext(role="service_role", claims={"role": "service_role"})
STALE_UPLOAD_SECONDS = 24 * 3600  # an upload registered this long ago whose row never came is dead
READAHEAD_BYTES = 4 * 1024 * 1024  # per transfer: body/backend bytes buffered ahead of the consumer


class _Rollback(Exception):
    pass


@contextlib.contextmanager
def db_errors() -> Iterator[None]:
    """Postgres errors of storage statements in Storage's catalog."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise errors.duplicate() from None
    except asyncpg.InsufficientPrivilegeError as exc:
        if "row-level security" in str(exc):
            raise errors.rls_denied() from None
        raise errors.access_denied(str(exc)) from None
    except asyncpg.ForeignKeyViolationError as exc:
        if "buckets" in str(exc) and "objects" in str(exc) and "still referenced" in str(exc):
            raise errors.not_empty() from None
        raise errors.no_such_bucket() from None
    except asyncpg.CheckViolationError as exc:
        raise errors.invalid_request(str(exc)) from None
    except asyncpg.QueryCanceledError:
        raise errors.StorageError(544, "DatabaseTimeout", "DatabaseTimeout", "The connection to the database timed out",
                                  http_status=544) from None


@dataclass
class Caller:
    auth: AuthContext
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] | None = None


@dataclass
class WriteStats:
    size: int = 0


def version_etag(version: str) -> str:
    """The entity tag of a blob the backend gives none for (local disk).

    Blobs are immutable and every upload gets a fresh version, so a tag derived from the version
    is a strong validator; hashing the content instead (MD5) cost more CPU than everything else
    on the upload path together. S3 returns its own ETag, which is used as is, as Supabase does.
    """
    return hashlib.md5(version.encode()).hexdigest()


def object_metadata(size: int, etag: str, mimetype: str, cache_control: str, when: datetime) -> dict[str, Any]:
    return {"eTag": f'"{etag}"', "size": size, "mimetype": mimetype, "cacheControl": cache_control,
            "lastModified": db.iso(when), "contentLength": size, "httpStatusCode": 200}


VERSION_SHAPE = str(uuid.UUID(int=0))  # as long as every version (a uuid4)


def blob_key(name: str, version: str) -> str:
    return f"{name}/{version}"


async def sweep(pool: asyncpg.Pool, backend: Backend, stale_upload_seconds: int = STALE_UPLOAD_SECONDS,
                bucket_id: str | None = None) -> int:
    """Delete blobs no committed row references (garbage, and uploads whose writer died)."""
    removed = 0
    while True:
        async with pool.acquire() as conn:
            async with conn.transaction():
                rows = await db.claim_garbage(conn, stale_upload_seconds, bucket_id=bucket_id)
        if not rows:
            return removed
        by_bucket: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            if not r["referenced"]:
                by_bucket.setdefault(r["bucket_id"], []).append((r["name"], r["version"]))
        for bucket, items in by_bucket.items():
            try:
                await backend.delete(bucket, [blob_key(n, v) for n, v in items])
                removed += len(items)
            except Exception:  # noqa: BLE001 - keep them for the next round
                log.exception("could not delete %d blobs of %s", len(items), bucket)
                async with pool.acquire() as conn:
                    for n, v in items:
                        await db.garbage_restore(conn, bucket, n, v)
                return removed
        if len(rows) < 1000:
            return removed


class Storage:
    def __init__(self, ctx: Context, backend: Backend | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.backend = backend or build_backend(ctx.settings)
        self.signer = Signer(ctx.keys)

    # --- lifecycle (the periodic sweeper is started by lifecycle.py) ------------------------
    async def start(self) -> None:
        await self.backend.start()

    async def close(self) -> None:
        await self.backend.close()

    async def sweep(self, stale_upload_seconds: int = STALE_UPLOAD_SECONDS, bucket_id: str | None = None) -> int:
        return await sweep(self.ctx.db.owner, self.backend, stale_upload_seconds, bucket_id)

    async def reap(self, bucket_id: str) -> None:
        """Remove garbage just created by a committed change (best effort; the sweeper retries)."""
        try:
            await self.sweep(stale_upload_seconds=STALE_UPLOAD_SECONDS, bucket_id=bucket_id)
        except Exception:  # noqa: BLE001
            log.exception("reap failed")

    # --- scopes ---------------------------------------------------------------------------
    def scope(self, caller: Caller) -> RequestScope:
        return RequestScope(role=caller.auth.role, claims=caller.auth.claims, method=caller.method,
                            path=caller.path, headers=caller.headers or {},
                            statement_timeout_ms=self.settings.db_statement_timeout_ms)

    def on_replica(self, caller: Caller, read_only: bool) -> bool:
        """Reads of GET/HEAD requests may go to the read replica; everything a POST does (copy,
        sign, list) reads the primary, which holds what the same client just wrote."""
        return read_only and caller.method in ("GET", "HEAD") and self.ctx.db.read is not None

    @contextlib.asynccontextmanager
    async def as_caller(self, caller: Caller, read_only: bool = False) -> AsyncIterator[asyncpg.Connection]:
        with db_errors():
            async with request_scope(self.ctx.db, self.scope(caller),
                                     read_only=self.on_replica(caller, read_only)) as conn:
                yield conn

    async def bucket_as_owner(self, bucket_id: str) -> asyncpg.Record:
        row = await db.get_bucket(self.ctx.db.owner, bucket_id)
        if row is None:
            raise errors.no_such_bucket()
        return row

    # --- buckets --------------------------------------------------------------------------
    async def list_buckets(self, caller: Caller, limit: int | None, offset: int, sort: str, order: str,
                           search: str | None) -> list[dict[str, Any]]:
        async with self.as_caller(caller, read_only=True) as conn:
            rows = await db.list_buckets(conn, limit, offset, sort, order, search)
        return [bucket_json(r, with_type=True) for r in rows]

    async def get_bucket(self, caller: Caller, bucket_id: str) -> dict[str, Any]:
        async with self.as_caller(caller, read_only=True) as conn:
            row = await db.get_bucket(conn, bucket_id)
        if row is None and self.on_replica(caller, True):
            async with self.as_caller(caller) as conn:  # the replica may lag a bucket just created
                row = await db.get_bucket(conn, bucket_id)
        if row is None:
            raise errors.no_such_bucket()
        return bucket_json(row)

    async def create_bucket(self, caller: Caller, body: dict[str, Any]) -> str:
        name = body.get("name")
        if name is None:
            raise errors.invalid_request("body must have required property 'name'")
        if not isinstance(name, str):
            raise errors.invalid_request("body/name must be string")
        bucket_id = body.get("id")
        if bucket_id is not None and not isinstance(bucket_id, str):
            raise errors.invalid_request("body/id must be string")
        bucket_id = bucket_id or name
        check_bucket_name(name)
        check_bucket_name(bucket_id)
        size = parse_size(body.get("file_size_limit"))
        mimes = _mime_list(body.get("allowed_mime_types"))
        public = _bool(body.get("public"), False)
        async with self.as_caller(caller) as conn:
            await db.create_bucket(conn, bucket_id, name, caller.auth.user_id, public, size, mimes)
        return str(name)

    async def update_bucket(self, caller: Caller, bucket_id: str, body: dict[str, Any]) -> None:
        fields: dict[str, Any] = {}
        if "public" in body and body["public"] is not None:
            fields["public"] = _bool(body["public"], False)
        if "file_size_limit" in body:
            fields["file_size_limit"] = parse_size(body["file_size_limit"])
        if "allowed_mime_types" in body:
            fields["allowed_mime_types"] = _mime_list(body["allowed_mime_types"])
        async with self.as_caller(caller) as conn:
            found = await db.update_bucket(conn, bucket_id, fields)
        if not found:
            raise errors.no_such_bucket()

    async def empty_bucket(self, caller: Caller, bucket_id: str) -> None:
        async with self.as_caller(caller) as conn:
            if await db.get_bucket(conn, bucket_id) is None:
                raise errors.no_such_bucket()
            await db.delete_all_objects(conn, bucket_id)
        await self.reap(bucket_id)

    async def delete_bucket(self, caller: Caller, bucket_id: str) -> None:
        async with self.as_caller(caller) as conn:
            if await db.get_bucket(conn, bucket_id) is None:
                raise errors.no_such_bucket()
            # Objects the caller cannot see still count: ask as owner.
            if await db.bucket_has_objects(self.ctx.db.owner, bucket_id):
                raise errors.not_empty()
            if not await db.delete_bucket(conn, bucket_id):
                raise errors.no_such_bucket()

    # --- upload ---------------------------------------------------------------------------
    def size_limit(self, bucket: asyncpg.Record) -> int:
        limit = self.settings.storage_max_file_size
        if bucket["file_size_limit"]:
            limit = min(limit, int(bucket["file_size_limit"]))
        return limit

    def check_key_fits(self, bucket_id: str, name: str) -> None:
        """A name within ownbase's limit can still make the backend's key too long (S3: 1,024 bytes
        once prefix, bucket and version are added): refuse it before any byte moves."""
        if not self.backend.key_fits(bucket_id, blob_key(name, VERSION_SHAPE)):
            raise errors.key_too_long()

    async def check_write(self, caller: Caller, bucket_id: str, name: str, owner: str | None, upsert: bool,
                          user_metadata: Any, mime: str) -> None:
        """Run the row write under RLS and roll it back: refusal happens before any byte moves."""
        probe = object_metadata(0, "", mime, "no-cache", datetime.now(timezone.utc))
        try:
            async with self.as_caller(caller) as conn:
                if upsert:
                    await db.upsert_object(conn, bucket_id, name, owner, "probe", probe, user_metadata)
                else:
                    await db.insert_object(conn, bucket_id, name, owner, "probe", probe, user_metadata)
                raise _Rollback()
        except _Rollback:
            pass

    async def check_name_free(self, bucket_id: str, name: str) -> None:
        """Refuse a name that runs through another object's blob (``<name>/<version>``): its own
        blob could not be stored under a path that is already a file."""
        splits = version_like_splits(name)
        if splits and await db.names_blob_of_object(self.ctx.db.owner, bucket_id, splits):
            raise errors.key_conflict(name)

    async def upload(self, caller: Caller, bucket_id: str, name: str, body: UploadBody, *, upsert: bool,
                     owner: str | None = None, check: bool = True) -> asyncpg.Record:
        check_key(name)
        bucket = await self.bucket_as_owner(bucket_id)
        await self.check_name_free(bucket_id, name)
        self.check_key_fits(bucket_id, name)
        limit = self.size_limit(bucket)
        if body.content_length is not None and body.content_length > limit:
            raise errors.entity_too_large()
        if not mime_allowed(body.content_type, bucket["allowed_mime_types"]):
            raise errors.invalid_mime_type(body.content_type.split(";")[0])
        owner = owner if owner is not None else caller.auth.user_id
        if check:
            await self.check_write(caller, bucket_id, name, owner, upsert, body.user_metadata, body.content_type)
        return await self.store(caller, bucket_id, name, body.chunks, content_type=body.content_type,
                                cache_control=body.cache_control, user_metadata=body.user_metadata,
                                upsert=upsert, owner=owner, limit=limit)

    async def store(self, caller: Caller, bucket_id: str, name: str, chunks: AsyncIterator[bytes], *,
                    content_type: str, cache_control: str, user_metadata: Any, upsert: bool,
                    owner: str | None, limit: int) -> asyncpg.Record:
        """Write the blob under a fresh version, then commit the row pointing at it."""
        version = str(uuid.uuid4())
        key = blob_key(name, version)
        stats = WriteStats()

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in readahead(chunks, READAHEAD_BYTES):
                stats.size += len(chunk)
                if stats.size > limit:
                    raise errors.entity_too_large()
                yield chunk

        await db.pending_add(self.ctx.db.owner, bucket_id, name, version)
        try:
            backend_etag = await self.backend.write(bucket_id, key, counted(), content_type)
        except BaseException:
            # A failed write removes its own partial data (backend contract): only the record goes.
            await asyncio.shield(db.pending_drop(self.ctx.db.owner, bucket_id, name, version))
            raise
        try:
            meta = object_metadata(stats.size, backend_etag or version_etag(version), content_type, cache_control,
                                   datetime.now(timezone.utc))
            async with self.as_caller(caller) as conn:
                if upsert:
                    row = await db.upsert_object(conn, bucket_id, name, owner, version, meta, user_metadata)
                else:
                    row = await db.insert_object(conn, bucket_id, name, owner, version, meta, user_metadata)
        except BaseException:
            await asyncio.shield(self._discard(bucket_id, name, version))
            raise
        await db.pending_drop(self.ctx.db.owner, bucket_id, name, version)
        if upsert:
            await self.reap(bucket_id)
        return row

    async def _discard(self, bucket_id: str, name: str, version: str) -> None:
        try:
            await self.backend.delete(bucket_id, [blob_key(name, version)])
            await db.pending_drop(self.ctx.db.owner, bucket_id, name, version)
        except Exception:  # noqa: BLE001 - stays registered; the sweeper removes it later
            log.exception("could not discard a failed upload's blob")

    # --- read -----------------------------------------------------------------------------
    async def find_for_read(self, caller: Caller | None, bucket_id: str, name: str, mode: str,
                            *, not_found: Any = errors.not_found_download, primary: bool = False
                            ) -> asyncpg.Record:
        """``mode``: 'authenticated' (RLS decides), 'public' (bucket must be public),
        'signed' (token already verified). Authenticated GET/HEAD reads use the replica when
        there is one; a miss there (replica lag) is asked again of the primary."""
        check_key(name)
        if mode == "public":
            bucket = await db.get_bucket(self.ctx.db.owner, bucket_id)
            if bucket is None or not bucket["public"]:
                raise errors.no_such_bucket()
            row = await db.find_object(self.ctx.db.owner, bucket_id, name)
        elif mode == "signed":
            row = await db.find_object(self.ctx.db.owner, bucket_id, name)
        else:
            assert caller is not None
            async with self.as_caller(caller, read_only=not primary) as conn:
                row = await db.find_object(conn, bucket_id, name)
            if row is None and not primary and self.on_replica(caller, True):
                async with self.as_caller(caller) as conn:
                    row = await db.find_object(conn, bucket_id, name)
            if row is None and await db.get_bucket(self.ctx.db.owner, bucket_id) is None:
                raise errors.no_such_bucket()
        if row is None:
            raise not_found()
        return row

    # --- list / info ------------------------------------------------------------------------
    async def list_objects(self, caller: Caller, bucket_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = body.get("prefix") or ""
        if not isinstance(prefix, str):
            raise errors.invalid_request("body/prefix must be string")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        prefix = prefix.lstrip("/")
        limit = _int(body.get("limit"), 100, "limit")
        limit = max(1, min(limit, 1500))
        offset = max(0, _int(body.get("offset"), 0, "offset"))
        sort = body.get("sortBy") or {}
        if not isinstance(sort, dict):
            raise errors.invalid_request("body/sortBy must be object")
        search = body.get("search") or ""
        async with self.as_caller(caller, read_only=True) as conn:
            if await db.get_bucket(self.ctx.db.owner, bucket_id) is None:
                raise errors.no_such_bucket()
            rows = await db.list_objects(conn, bucket_id, prefix, str(search), limit, offset,
                                         str(sort.get("column") or "name"), str(sort.get("order") or "asc"))
        return [
            {"name": r["name"], "id": str(r["id"]) if r["id"] else None, "updated_at": db.iso(r["updated_at"]),
             "created_at": db.iso(r["created_at"]), "last_accessed_at": db.iso(r["last_accessed_at"]),
             "metadata": r["metadata"]}
            for r in rows
        ]

    async def list_objects_v2(self, caller: Caller, bucket_id: str, body: dict[str, Any]) -> dict[str, Any]:
        prefix = body.get("prefix") or ""
        if not isinstance(prefix, str):
            raise errors.invalid_request("body/prefix must be string")
        limit = max(1, min(_int(body.get("limit"), 1000, "limit"), 1000))
        sort = body.get("sortBy") or {}
        if not isinstance(sort, dict):
            raise errors.invalid_request("body/sortBy must be object")
        column = str(sort.get("column") or "name")
        if column not in db.V2_SORT:
            raise errors.invalid_request("body/sortBy/column must be equal to one of the allowed values")
        descending = str(sort.get("order") or "asc").lower() == "desc"
        after = _decode_v2_cursor(body.get("cursor"), column)
        async with self.as_caller(caller, read_only=True) as conn:
            if await db.get_bucket(self.ctx.db.owner, bucket_id) is None:
                raise errors.no_such_bucket()
            rows = await db.list_objects_v2(conn, bucket_id, prefix.lstrip("/"), after, limit + 1, descending,
                                            bool(body.get("with_delimiter")), column)
        has_next = len(rows) > limit
        rows = rows[:limit]
        # Folder entries are keyed without their trailing slash, as Supabase lists them.
        folders = [{"name": r["entry"].rstrip("/"), "key": r["entry"].rstrip("/")} for r in rows if r["is_folder"]]
        objects = [{"name": r["name"], "key": r["name"], "id": str(r["id"]), "version": r["version"],
                    "updated_at": db.iso(r["updated_at"]), "created_at": db.iso(r["created_at"]),
                    "last_accessed_at": db.iso(r["last_accessed_at"]), "metadata": r["metadata"]}
                   for r in rows if not r["is_folder"]]
        out: dict[str, Any] = {"hasNext": has_next, "folders": folders, "objects": objects}
        if has_next and rows:
            out["nextCursor"] = _encode_v2_cursor(rows[-1], column)
        return out

    # --- move / copy / delete --------------------------------------------------------------
    async def move_or_copy(self, caller: Caller, body: dict[str, Any], *, copy: bool) -> asyncpg.Record:
        bucket_id = body.get("bucketId")
        src = body.get("sourceKey")
        dst = body.get("destinationKey")
        for field_name, value in (("bucketId", bucket_id), ("sourceKey", src), ("destinationKey", dst)):
            if not isinstance(value, str) or not value:
                raise errors.invalid_request(f"body must have required property '{field_name}'")
        assert isinstance(bucket_id, str) and isinstance(src, str) and isinstance(dst, str)
        dst_bucket = body.get("destinationBucket") or bucket_id
        if not isinstance(dst_bucket, str):
            raise errors.invalid_request("body/destinationBucket must be string")
        check_key(src)
        check_key(dst)
        await self.bucket_as_owner(bucket_id)
        target = await self.bucket_as_owner(dst_bucket)
        await self.check_name_free(dst_bucket, dst)
        self.check_key_fits(dst_bucket, dst)
        async with self.as_caller(caller, read_only=True) as conn:
            source = await db.find_object(conn, bucket_id, src)
        if source is None:
            raise errors.no_such_key()
        meta = source["metadata"] or {}
        mime = meta.get("mimetype", "application/octet-stream")
        if dst_bucket != bucket_id:
            if not mime_allowed(mime, target["allowed_mime_types"]):
                raise errors.invalid_mime_type(mime)
            if int(meta.get("size") or 0) > self.size_limit(target):
                raise errors.entity_too_large()
        version = str(uuid.uuid4())
        owner = caller.auth.user_id
        await db.pending_add(self.ctx.db.owner, dst_bucket, dst, version)
        try:
            await self.backend.copy(bucket_id, blob_key(src, source["version"]), dst_bucket, blob_key(dst, version))
            async with self.as_caller(caller) as conn:
                if copy:
                    new_meta = dict(meta, lastModified=db.iso(datetime.now(timezone.utc)))
                    user_meta = source["user_metadata"] if body.get("copyMetadata", True) is not False else None
                    upsert = _bool(caller.headers.get("x-upsert") if caller.headers else None, False)
                    fn = db.upsert_object if upsert else db.insert_object
                    row = await fn(conn, dst_bucket, dst, owner, version, new_meta, user_meta)
                else:
                    if await db.find_object(conn, dst_bucket, dst) is not None:
                        raise errors.duplicate()
                    row = await db.move_object(conn, bucket_id, src, dst_bucket, dst, version, owner)
                    if row is None:
                        raise errors.no_such_key()
        except BaseException:
            await asyncio.shield(self._discard(dst_bucket, dst, version))
            raise
        await db.pending_drop(self.ctx.db.owner, dst_bucket, dst, version)
        if not copy:
            await self.reap(bucket_id)
        return row

    async def delete_one(self, caller: Caller, bucket_id: str, name: str) -> None:
        check_key(name)
        async with self.as_caller(caller) as conn:
            row = await db.delete_object(conn, bucket_id, name)
        if row is None:
            if await db.get_bucket(self.ctx.db.owner, bucket_id) is None:
                raise errors.no_such_bucket()
            raise errors.no_such_key()
        await self.reap(bucket_id)

    async def delete_many(self, caller: Caller, bucket_id: str, prefixes: list[str]) -> list[dict[str, Any]]:
        await self.bucket_as_owner(bucket_id)
        async with self.as_caller(caller) as conn:
            rows = await db.delete_objects(conn, bucket_id, prefixes)
        await self.reap(bucket_id)
        return [object_json(r) for r in rows]

    # --- signed URLs ------------------------------------------------------------------------
    async def sign_urls(self, caller: Caller, bucket_id: str, paths: list[str], expires_in: int,
                        transformations: str | None = None) -> list[dict[str, Any]]:
        await self.bucket_as_owner(bucket_id)
        valid = [p for p in paths if isinstance(p, str)]
        async with self.as_caller(caller, read_only=True) as conn:
            rows = await db.find_objects(conn, bucket_id, valid)
        found = {r["name"] for r in rows}
        out = []
        for p in paths:
            if p in found:
                token = self.signer.sign_download(f"{bucket_id}/{p}", expires_in, transformations)
                base = "/render/image/sign" if transformations else "/object/sign"
                out.append({"error": None, "path": p,
                            "signedURL": f"{base}/{_url_path(bucket_id)}/{_url_path(p)}?token={token}"})
            else:
                out.append({"error": "Either the object does not exist or you do not have access to it",
                            "path": p, "signedURL": None})
        return out

    async def sign_upload(self, caller: Caller, bucket_id: str, name: str, upsert: bool) -> str:
        check_key(name)
        await self.bucket_as_owner(bucket_id)
        await self.check_name_free(bucket_id, name)
        await self.check_write(caller, bucket_id, name, caller.auth.user_id, upsert, None, "application/octet-stream")
        return self.signer.sign_upload(f"{bucket_id}/{name}", caller.auth.user_id, upsert)


# --- JSON shapes ------------------------------------------------------------------------------

def bucket_json(row: asyncpg.Record, with_type: bool = False) -> dict[str, Any]:
    out = {"id": row["id"], "name": row["name"], "owner": str(row["owner"]) if row["owner"] else "",
           "public": row["public"], "file_size_limit": row["file_size_limit"],
           "allowed_mime_types": row["allowed_mime_types"], "created_at": db.iso(row["created_at"]),
           "updated_at": db.iso(row["updated_at"])}
    if with_type:
        out["type"] = row["type"] or "STANDARD"
    return out


def object_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"name": row["name"], "bucket_id": row["bucket_id"], "owner": str(row["owner"]) if row["owner"] else None,
            "owner_id": row["owner_id"], "id": str(row["id"]), "updated_at": db.iso(row["updated_at"]),
            "created_at": db.iso(row["created_at"]), "last_accessed_at": db.iso(row["last_accessed_at"]),
            "metadata": row["metadata"], "user_metadata": row["user_metadata"], "version": row["version"]}


def info_json(row: asyncpg.Record) -> dict[str, Any]:
    meta = row["metadata"] or {}
    return {"id": str(row["id"]), "name": row["name"], "version": row["version"], "bucket_id": row["bucket_id"],
            "size": meta.get("size"), "content_type": meta.get("mimetype"), "cache_control": meta.get("cacheControl"),
            "etag": meta.get("eTag"), "metadata": row["user_metadata"] or {}, "last_modified": meta.get("lastModified")
            or db.iso(row["updated_at"]), "created_at": db.iso(row["created_at"])}


def _encode_cursor(entry: str) -> str:
    return base64.urlsafe_b64encode(entry.encode()).decode()


def _decode_cursor(value: Any) -> str | None:
    if not value:
        return None
    try:
        return base64.urlsafe_b64decode(str(value).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.invalid_request("Invalid cursor") from None


def _encode_v2_cursor(row: asyncpg.Record, column: str) -> str:
    if column == "name":
        return _encode_cursor(row["entry"])
    ts = row[column]
    return _encode_cursor(json.dumps([bool(row["is_folder"]), ts.isoformat() if ts else None, row["entry"]]))


def _decode_v2_cursor(value: Any, column: str) -> Any:
    """The entry name (name order) or ``(is_folder, timestamp, entry)`` (time order)."""
    raw = _decode_cursor(value)
    if raw is None or column == "name":
        return raw
    try:
        folder, ts, entry = json.loads(raw)
        when = datetime.fromisoformat(ts) if ts is not None else None
        if not isinstance(folder, bool) or not isinstance(entry, str):
            raise ValueError(raw)
    except (ValueError, TypeError):
        raise errors.invalid_request("Invalid cursor") from None
    return folder, when, entry


def _url_path(value: str) -> str:
    return quote(value, safe="/!*'();:@&=+$,-._~")


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.invalid_request(f"body/{name} must be integer") from None


def _mime_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_request("body/allowed_mime_types must be array of strings")
    return [v.strip() for v in value if v.strip()] or None
