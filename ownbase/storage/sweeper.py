"""The storage sweeper: removes what deletes, crashes and abandoned clients leave behind, once a
minute in the server and on demand with ``ownbase storage sweep``. It sits above both the object
service and TUS, so neither has to know the other.

- blobs no committed row references (garbage of replaces/deletes, uploads whose writer died);
- resumable uploads past their expiry, with their parts;
- the backend's own leftovers of killed writers: temporary files of the local backend, incomplete
  multipart uploads on S3 (only those older than the stale threshold, never one in flight).

Everything acts on the primary database (``ctx.db.owner``), never on a read replica.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from ownbase.storage import tus
from ownbase.storage.backends.base import Backend
from ownbase.storage.service import STALE_UPLOAD_SECONDS, Storage, sweep

log = logging.getLogger("ownbase.storage")

SWEEP_INTERVAL = 60.0


@dataclass
class SweepReport:
    blobs: int = 0  # blob records without an object row, their bytes deleted
    expired_uploads: int = 0  # resumable uploads past Upload-Expires
    leftovers: int = 0  # backend leftovers (temp files / incomplete multipart uploads)
    leftover_kind: str = "leftover(s)"

    def describe(self) -> str:
        return (f"removed {self.blobs} unreferenced blob(s), {self.expired_uploads} expired resumable "
                f"upload(s), {self.leftovers} {self.leftover_kind}")


async def sweep_all(pool: asyncpg.Pool, backend: Backend, stale_seconds: int = STALE_UPLOAD_SECONDS,
                    bucket_id: str | None = None) -> SweepReport:
    report = SweepReport(leftover_kind=backend.leftover_kind)
    report.expired_uploads = await tus.expire(pool, backend)
    report.blobs = await sweep(pool, backend, stale_seconds, bucket_id)
    report.leftovers = await backend.sweep_leftovers(stale_seconds, bucket_id)
    return report


async def sweep_forever(storage: Storage) -> None:
    while True:
        try:
            report = await sweep_all(storage.ctx.db.owner, storage.backend)
            if report.leftovers:
                log.info("storage sweep: %s", report.describe())
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the sweeper must survive a bad round
            log.exception("storage sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL)
