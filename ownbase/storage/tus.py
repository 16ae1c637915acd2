"""TUS 1.0 resumable uploads: the protocol's state and steps, called with typed arguments (the
HTTP glue, headers and plain-text answers, is ``tus_routes.py``).

State lives in ``ownbase.storage_tus_uploads`` so any process can take the next request. A PATCH
first takes the upload's lease (``db.tus_lock``: one writer at a time across processes, renewed
while the body streams, lapsing on its own if the process dies), then streams its body into a part
blob of its own (``.tus/<version>/<offset>.<lease>``), then records the part. The final PATCH
streams the parts, in order, into a normal object upload (RLS checked again at commit). An
interrupted PATCH keeps nothing of its partial body: the client resumes from the offset HEAD
reports.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import asyncpg

from ownbase.storage import db, errors
from ownbase.storage.backends.base import Backend
from ownbase.storage.paths import check_key, mime_allowed
from ownbase.storage.service import Caller, Storage, blob_key
from ownbase.tasks import cancel_and_wait

log = logging.getLogger("ownbase.storage")

LEASE_SECONDS = 20.0  # a PATCH's hold on its upload; a killed process's hold lapses after this
RENEW_SECONDS = 5.0  # how often a streaming PATCH extends its lease


class TusError(Exception):
    """A refusal TUS answers in plain text with its real status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def offset_conflict() -> TusError:
    return TusError(409, "Upload-Offset conflict")


@dataclass(frozen=True)
class NewUpload:
    bucket_id: str
    name: str
    length: int
    content_type: str
    cache_control: str
    user_metadata: Any
    upsert: bool
    owner: str | None
    check_write: bool  # False when a signed upload token is the grant


@dataclass(frozen=True)
class Upload:
    id: str
    bucket_id: str
    name: str
    version: str
    length: int
    offset: int
    part_keys: list[str]
    content_type: str
    cache_control: str
    user_metadata: Any
    upsert: bool
    role: str
    claims: dict[str, Any]
    expires_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "Upload":
        return cls(id=row["id"], bucket_id=row["bucket_id"], name=row["name"], version=row["version"],
                   length=int(row["upload_length"]), offset=int(row["upload_offset"]),
                   part_keys=_part_keys(row), content_type=row["content_type"],
                   cache_control=row["cache_control"], user_metadata=row["user_metadata"], upsert=row["upsert"],
                   role=row["role"], claims=row["claims"] or {}, expires_at=row["expires_at"])

    @property
    def owner(self) -> str | None:
        return self.claims.get("ownbase_owner")

    def belongs_to(self, caller: Caller) -> bool:
        return caller.auth.role == self.role and caller.auth.claims.get("sub") == self.claims.get("sub")


def _part_keys(row: asyncpg.Record) -> list[str]:
    keys = list(row["part_keys"])
    if len(keys) == len(row["part_offsets"]):
        return keys
    # Some parts were recorded by a process of the previous release (rolling upgrade): those
    # have only an offset, and the key that release derived from it.
    by_offset = {int(k.rsplit("/", 1)[1].split(".", 1)[0]): k for k in keys}
    return [by_offset.get(o, f".tus/{row['id']}/{o}") for o in sorted(row["part_offsets"])]


def upload_id_for(bucket_id: str, name: str, version: str) -> str:
    return base64.urlsafe_b64encode(f"{bucket_id}/{name}/{version}".encode()).decode().rstrip("=")


class _Lease:
    lost = False


@contextlib.asynccontextmanager
async def _leased(pool: asyncpg.Pool, upload_id: str, token: str) -> AsyncIterator[_Lease]:
    """Keep the lease taken with ``token`` alive while the block runs; release it after."""
    lease = _Lease()

    async def renew() -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                if not await db.tus_renew(pool, upload_id, token, LEASE_SECONDS):
                    lease.lost = True  # lapsed and taken over, or the upload is gone
                    return
            except Exception:  # noqa: BLE001 - a database hiccup: try again before the lease lapses
                log.warning("could not renew a TUS upload lease", exc_info=True)

    task = asyncio.create_task(renew(), name="tus-lease")
    try:
        yield lease
    finally:
        await cancel_and_wait(task)
        try:
            await asyncio.shield(db.tus_unlock(pool, upload_id, token))
        except Exception:  # noqa: BLE001 - the lease lapses by itself
            log.warning("could not release a TUS upload lease", exc_info=True)


class Tus:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.pool: asyncpg.Pool = storage.ctx.db.owner

    async def create(self, caller: Caller, new: NewUpload) -> tuple[str, datetime]:
        """Register an upload after the checks an upload gets (key, bucket, size, type, RLS)."""
        st = self.storage
        check_key(new.name)
        bucket = await st.bucket_as_owner(new.bucket_id)
        st.check_key_fits(new.bucket_id, new.name)
        if new.length > st.size_limit(bucket):
            raise TusError(413, "The object exceeded the maximum allowed size")
        if not mime_allowed(new.content_type, bucket["allowed_mime_types"]):
            raise TusError(415, f"mime type {new.content_type} is not supported")
        if new.check_write:
            await st.check_write(caller, new.bucket_id, new.name, new.owner, new.upsert, new.user_metadata,
                                 new.content_type)
        if not new.upsert and await db.find_object(self.pool, new.bucket_id, new.name) is not None:
            raise TusError(409, "The resource already exists")
        version = str(uuid.uuid4())
        upload_id = upload_id_for(new.bucket_id, new.name, version)
        expires = datetime.now(timezone.utc) + timedelta(seconds=st.settings.storage_tus_expiry)
        await db.tus_insert(self.pool, upload_id, new.bucket_id, new.name, version, new.length, new.content_type,
                            new.cache_control, new.user_metadata, new.upsert, caller.auth.role,
                            {**caller.auth.claims, "ownbase_owner": new.owner}, expires)
        return upload_id, expires

    async def get(self, upload_id: str) -> Upload | None:
        """A live (not expired) upload, whoever it belongs to."""
        row = await db.tus_get(self.pool, upload_id)
        return Upload.from_row(row) if row is not None else None

    async def append(self, caller: Caller, upload: Upload, offset: int, chunks: AsyncIterator[bytes]) -> int:
        """Write one PATCH body at ``offset``; returns the new offset. The upload is finished (made
        an object) when it reaches its length. A concurrent PATCH of the same upload gets 409."""
        if offset != upload.offset:
            raise offset_conflict()
        token = uuid.uuid4().hex
        if not await db.tus_lock(self.pool, upload.id, token, offset, LEASE_SECONDS):
            raise offset_conflict()
        async with _leased(self.pool, upload.id, token) as lease:
            new_offset = await self._write_part(upload, token, offset, chunks, lease)
            if new_offset == upload.length:
                await self._finish(caller, upload.id)
        return new_offset

    async def _write_part(self, upload: Upload, token: str, offset: int, chunks: AsyncIterator[bytes],
                          lease: _Lease) -> int:
        st = self.storage
        # Registered like any blob being written: if this process dies mid-write, the sweeper
        # removes the bytes once they are stale.
        part_name, part_version = f".tus/{upload.version}", f"{offset}.{token[:12]}"
        key = blob_key(part_name, part_version)
        received = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal received
            async for chunk in chunks:
                if lease.lost:
                    raise offset_conflict()
                received += len(chunk)
                if offset + received > upload.length:
                    raise errors.entity_too_large()
                yield chunk

        await db.pending_add(self.pool, upload.bucket_id, part_name, part_version)
        try:
            await st.backend.write(upload.bucket_id, key, body(), "application/octet-stream")
        except BaseException:
            await asyncio.shield(db.pending_drop(self.pool, upload.bucket_id, part_name, part_version))
            raise
        recorded = False
        if received:
            async with self.pool.acquire() as conn, conn.transaction():
                recorded = await db.tus_append(conn, upload.id, token, offset, offset + received, key)
                if recorded:
                    await db.pending_drop(conn, upload.bucket_id, part_name, part_version)
        if not recorded:
            # Empty body, or the lease was lost: the part is this PATCH's own, nobody else's.
            await st.backend.delete(upload.bucket_id, [key])
            await db.pending_drop(self.pool, upload.bucket_id, part_name, part_version)
            if received:
                raise offset_conflict()
        return offset + received

    async def _finish(self, caller: Caller, upload_id: str) -> None:
        st = self.storage
        row = await db.tus_get(self.pool, upload_id, live=False)
        if row is None:
            raise TusError(404, "Upload not found")  # terminated while the last PATCH ran
        upload = Upload.from_row(row)

        async def parts() -> AsyncIterator[bytes]:
            for key in upload.part_keys:
                async for chunk in st.backend.read(upload.bucket_id, key):
                    yield chunk

        bucket = await st.bucket_as_owner(upload.bucket_id)
        try:
            await st.store(caller, upload.bucket_id, upload.name, parts(), content_type=upload.content_type,
                           cache_control=upload.cache_control, user_metadata=upload.user_metadata,
                           upsert=upload.upsert, owner=upload.owner, limit=st.size_limit(bucket))
        finally:
            await drop_upload(self.pool, st.backend, upload)

    async def terminate(self, upload: Upload) -> None:
        await drop_upload(self.pool, self.storage.backend, upload)


async def drop_upload(pool: asyncpg.Pool, backend: Backend, upload: Upload) -> None:
    await backend.delete(upload.bucket_id, upload.part_keys)
    await db.tus_delete(pool, upload.id)


async def expire(pool: asyncpg.Pool, backend: Backend) -> int:
    """Remove abandoned uploads (past Upload-Expires, no PATCH running) and their parts."""
    rows = await db.tus_expired(pool)
    for row in rows:
        await drop_upload(pool, backend, Upload.from_row(row))
    return len(rows)
